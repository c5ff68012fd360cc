"""Shared pieces for adapters whose region speaks HTTP: one pooled aiohttp session per adapter, and the one
translation of aiohttp's transport errors into the error tree.

=========================================================  ==========================================
what happened                                              raised
=========================================================  ==========================================
connection refused or not made in time                     :class:`~adapters.errors.RegionUnavailable`
TLS handshake refused (certificate not trusted, …)         :class:`~adapters.errors.RegionUnavailable`
no complete answer within the timeout                      :class:`~adapters.errors.RegionTimeout`
disconnect mid-call, other client errors, unreadable reply :class:`~adapters.errors.RegionProtocolError`
=========================================================  ==========================================

A region's own refusals (its error codes) are the adapter's to translate, around this: its client raises
:class:`~adapters.jsonwire.ErrorAnswer` where it reads one, and :func:`translated_errors` hands it to the
adapter's function that makes the matching error of it (usually through the region's
:class:`~adapters.refusals.RefusalCodes`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
from yarl import URL

from adapters.errors import RegionProtocolError, RegionTimeout, RegionUnavailable, YikatongError
from adapters.jsonwire import ErrorAnswer
from adapters.tls import ClientTls


@contextlib.contextmanager
def transport_errors(region: str) -> Iterator[None]:
    """Turn aiohttp, timeout and decoding errors raised inside the block into adapter errors.

    A ``KeyError``, ``TypeError`` or ``ValueError`` raised while decoding a reply means the reply was unreadable.
    """
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:  # the connection was never made: nothing reached the region
        raise RegionUnavailable(region, f"could not connect in time: {exc}") from exc
    except TimeoutError as exc:
        raise RegionTimeout(region, "no answer in time") from exc
    except aiohttp.ClientConnectorCertificateError as exc:  # before any byte of the request was sent
        raise RegionUnavailable(
            region, f"the region's TLS certificate is not trusted: {exc.certificate_error}"
        ) from exc
    except aiohttp.ClientConnectorError as exc:  # the TLS handshake's other failures included
        raise RegionUnavailable(region, f"could not connect: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise RegionProtocolError(region, f"{type(exc).__name__}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise RegionProtocolError(region, f"unreadable reply ({type(exc).__name__}: {exc})") from exc


@contextlib.contextmanager
def translated_errors(region: str, refuse: Callable[[ErrorAnswer], YikatongError]) -> Iterator[None]:
    """An HTTP adapter's one choke point: :func:`transport_errors`, and the region's error answers.

    Args:
        region: the region id, named in every error raised.
        refuse: makes the adapter error (a ``Refusal``, ``RegionUnavailable``, …) of an error answer.
    """
    try:
        with transport_errors(region):
            yield
    except ErrorAnswer as exc:
        raise refuse(exc) from None


class HttpSession:
    """One pooled aiohttp session, opened by the adapter's ``start`` and closed by its ``close``.

    Args:
        region: the region id, named in every error.
        tls: the link's TLS (:class:`~adapters.tls.ClientTls`, usually ``ClientTls.from_options(settings.options,
            …)``), used for ``https://`` URLs; None: the system's trusted roots and no client certificate.
    """

    def __init__(self, region: str, tls: ClientTls | None = None) -> None:
        self.region = region
        self._tls = tls
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            context = (self._tls or ClientTls()).ssl_context()
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"adapter for {self.region} used before start()")
        return self._session

    async def exchange(self, method: str, url: str | URL, *, timeout: float, **request: Any) -> tuple[int, bytes]:
        """Send one request and read its whole answer; call it inside :func:`transport_errors`.

        Args:
            method: the HTTP method.
            url: where to send it.
            timeout: seconds the whole exchange may take.
            request: the rest of the request, as ``aiohttp.ClientSession.request`` takes it (``data``, ``json``,
                ``headers``, ``params``).

        Returns:
            The answer's HTTP status and body.

        Raises:
            RegionTimeout: ``timeout`` is not positive; nothing is sent (aiohttp would read it as no limit).
        """
        if timeout <= 0:
            raise RegionTimeout(self.region, "no time left to call the region")
        limit = aiohttp.ClientTimeout(total=timeout)
        async with self.session.request(method, url, timeout=limit, **request) as response:
            return response.status, await response.read()
