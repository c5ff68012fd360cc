"""The 粤桂琼 JSON-RPC client: one aiohttp session, one call at a time, errors translated in one place.

This is the only module of the adapter that sees aiohttp, and :func:`translated_errors` is the one place where
foreign errors and the region's error objects become ``adapters.errors``:

===========================================================  ==========================================
what happened                                                raised
===========================================================  ==========================================
connection refused, connect timed out                        :class:`~adapters.errors.RegionUnavailable`
HTTP 503 or error ``-32050`` (down) / ``-32051`` (busy)      :class:`~adapters.errors.RegionUnavailable`
no complete answer within ``timeout``                        :class:`~adapters.errors.RegionTimeout`
a business error code (``1001``–``3001``)                    the matching :class:`~adapters.errors.Refusal`
any other error code (bad key, bad params, internal error)   :class:`~adapters.errors.RegionProtocolError`
disconnect mid-call, an answer that is not JSON-RPC 2.0      :class:`~adapters.errors.RegionProtocolError`
===========================================================  ==========================================
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import aiohttp

from adapters.errors import (
    ApplicationNotFound,
    CardAlreadyHeld,
    CardNotFound,
    CardStateConflict,
    HolderMismatch,
    HolderNotFound,
    IdempotencyKeyReused,
    NotInsured,
    RegionProtocolError,
    RegionTimeout,
    RegionUnavailable,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
    YikatongError,
)
from yikatong_ggh import codec, dialect
from yikatong_ggh.dialect import Code

T = TypeVar("T")

Refuse = Callable[[codec.RpcError, str, str], YikatongError]
"""Builds a refusal from the error object, the region id and the write's message id."""


def _msg_id(error: codec.RpcError, message_id: str) -> dict[str, str]:
    """The settlement message id a refusal names: the error's ``data.msg_id``, else the write's own."""
    named = error.data.get("msg_id") if isinstance(error.data, dict) else None
    return {"request_id": named if isinstance(named, str) else message_id}


def _plain(cls: type[YikatongError]) -> Refuse:
    return lambda e, region, _: cls(e.message, metadata={"region": region})


# The region's business error codes → the domain's refusals.
REFUSALS: dict[int, Refuse] = {
    Code.CARD_NOT_FOUND: _plain(CardNotFound),
    Code.HOLDER_MISMATCH: _plain(HolderMismatch),
    Code.HOLDER_NOT_FOUND: _plain(HolderNotFound),
    Code.APPLICATION_NOT_FOUND: _plain(ApplicationNotFound),
    Code.CARD_ALREADY_HELD: _plain(CardAlreadyHeld),
    Code.NOT_INSURED: _plain(NotInsured),
    Code.CARD_STATE_CONFLICT: lambda e, _, __: CardStateConflict(
        dialect.action_name(codec.field(e.data, "op", str)), codec.coded(e.data, "status", dialect.CARD_STATUS)
    ),
    Code.SETTLEMENT_NOT_FOUND: lambda e, _, key: SettlementNotFound(e.message, metadata=_msg_id(e, key)),
    Code.SETTLEMENT_NOT_SETTLED: lambda e, _, __: SettlementNotSettled(
        codec.field(e.data, "msg_id", str), codec.coded(e.data, "state", dialect.SETTLEMENT_STATE).value
    ),
    Code.SETTLEMENT_CORRECTED: lambda e, _, key: SettlementCorrected(e.message, metadata=_msg_id(e, key)),
    Code.IDEMPOTENCY_KEY_REUSED: lambda _, __, key: IdempotencyKeyReused(key),
}
UNAVAILABLE = frozenset({Code.SYSTEM_DOWN, Code.SYSTEM_BUSY})


def _from_error(region: str, error: codec.RpcError, message_id: str) -> YikatongError:
    if error.http_status == 503 or error.code in UNAVAILABLE:
        return RegionUnavailable(region, f"the region is down or busy ({error.code} {error.message})")
    refuse = REFUSALS.get(error.code)
    if refuse is None:  # includes -32001: our channel key was refused, a configuration fault
        return RegionProtocolError(region, f"unexpected error object: {error}")
    try:
        return refuse(error, region, message_id)
    except (codec.MalformedReply, KeyError) as exc:
        return RegionProtocolError(region, f"malformed refusal {error.code}: {exc}")


@contextlib.contextmanager
def translated_errors(region: str, message_id: str = "") -> Iterator[None]:
    """The one place where aiohttp, asyncio and the region's error objects become ``adapters.errors``.

    Args:
        region: the region id, named in every error raised.
        message_id: the write's message id (``Idempotency-Key``), named in ``IdempotencyKeyReused``.

    Raises:
        Refusal: a subclass matching the region's business error code.
        RegionUnavailable: the connection failed, or the region said it is down or busy.
        RegionTimeout: no answer in time.
        RegionProtocolError: a dropped connection, an answer that is not the protocol, or an unexpected code.
    """
    try:
        yield
    except codec.RpcError as exc:
        raise _from_error(region, exc, message_id) from None
    except aiohttp.ConnectionTimeoutError as exc:  # never connected: nothing reached the region
        raise RegionUnavailable(region, f"could not connect in time: {exc}") from None
    except TimeoutError:
        raise RegionTimeout(region, "no answer within the deadline") from None
    except aiohttp.ClientConnectorError as exc:
        raise RegionUnavailable(region, f"could not connect: {exc}") from None
    except (aiohttp.ClientError, ValueError) as exc:  # codec.MalformedReply is a ValueError
        raise RegionProtocolError(region, f"{type(exc).__name__}: {exc}") from None


class RpcClient:
    """Calls the region's JSON-RPC endpoint over one pooled aiohttp session.

    Args:
        region_id: the region's id, named in every error raised.
        endpoint: the region's base URL, e.g. ``http://127.0.0.1:7114``; calls go to ``<endpoint>/rpc``.
        api_key: the channel key the region issued to the hub, sent as ``Authorization: Bearer``.
    """

    def __init__(self, region_id: str, endpoint: str, api_key: str) -> None:
        self.region_id = region_id
        self.url = endpoint.rstrip("/") + dialect.PATH
        self._authorization = f"Bearer {api_key}"
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP session."""
        if self._session is None:
            self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Close the HTTP session and its pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: dialect.Method,
        params: Mapping[str, Any],
        decode: Callable[[Any], T],
        *,
        timeout: float,
        message_id: str = "",
    ) -> T:
        """Call one method and decode its result.

        Args:
            method: the method to call.
            params: its params object.
            decode: turns the result into the caller's value; a ``codec.MalformedReply`` it raises means the
                result was unreadable.
            timeout: seconds the whole call may take.
            message_id: a write's message id, sent as ``Idempotency-Key``; the region deduplicates on it.

        Returns:
            What ``decode`` made of the result.

        Raises:
            Refusal, RegionUnavailable, RegionTimeout, RegionProtocolError: see :func:`translated_errors`.
        """
        if self._session is None:
            raise RuntimeError("RpcClient.start() was not called")
        if timeout <= 0:  # aiohttp reads a zero or negative total as "no timeout"
            raise RegionTimeout(self.region_id, "no time left to call the region")
        call_id = next(self._ids)
        headers = {dialect.AUTHORIZATION_HEADER: self._authorization, "Content-Type": "application/json"}
        if message_id:
            headers[dialect.IDEMPOTENCY_HEADER] = message_id
        with translated_errors(self.region_id, message_id):
            async with self._session.post(
                self.url,
                data=codec.request(call_id, method, params),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as answer:
                payload = await answer.read()
            return decode(codec.response(answer.status, payload, call_id))
