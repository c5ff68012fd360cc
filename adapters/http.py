"""Shared pieces for adapters whose region speaks HTTP: one pooled aiohttp session per adapter, and the one
translation of aiohttp's transport errors into the error tree.

=========================================================  ==========================================
what happened                                              raised
=========================================================  ==========================================
connection refused or not made in time                     :class:`~adapters.errors.RegionUnavailable`
no complete answer within the timeout                      :class:`~adapters.errors.RegionTimeout`
disconnect mid-call, other client errors, unreadable reply :class:`~adapters.errors.RegionProtocolError`
=========================================================  ==========================================

A region's own refusals (its error codes) are the adapter's to translate, around this.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp

from adapters.errors import RegionProtocolError, RegionTimeout, RegionUnavailable


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
    except aiohttp.ClientConnectorError as exc:
        raise RegionUnavailable(region, f"could not connect: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise RegionProtocolError(region, f"{type(exc).__name__}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise RegionProtocolError(region, f"unreadable reply ({type(exc).__name__}: {exc})") from exc


class HttpSession:
    """One pooled aiohttp session, opened by the adapter's ``start`` and closed by its ``close``."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"adapter for {self.region} used before start()")
        return self._session
