"""The 粤桂琼 JSON-RPC client: one aiohttp session, one call at a time, errors translated in one place.

This is the only module of the adapter that sees aiohttp, and :func:`translated_errors` is the one place where
foreign errors and the region's error objects become ``adapters.errors``. The transport half comes from the hub's
SDK (:mod:`adapters.http`); the region's half is here:

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
from functools import partial
from typing import Any, TypeVar

from adapters import http
from adapters.errors import (
    CardStateConflict,
    IdempotencyKeyReused,
    Refusal,
    RegionProtocolError,
    RegionUnavailable,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
    YikatongError,
)
from adapters.jsonwire import ErrorAnswer, Fields, WireError, dumps, loads
from adapters.tls import ClientTls
from yikatong_ggh import dialect

T = TypeVar("T")


def _refusal(cls: type[Refusal], error: ErrorAnswer, region: str, message_id: str) -> Refusal:
    """The refusal of a business error code, with what the error's data says of it."""
    details = error.details
    if cls is CardStateConflict:
        action = dialect.action_name(details.value("op", str))
        return CardStateConflict(action, details.coded("status", dialect.CARD_STATUS))
    if cls is SettlementNotSettled:
        state = details.coded("state", dialect.SETTLEMENT_STATE)
        return SettlementNotSettled(details.value("msg_id", str), state.value)
    if cls is IdempotencyKeyReused:
        return IdempotencyKeyReused(message_id)
    if cls in (SettlementNotFound, SettlementCorrected):  # named by the error's msg_id, else the write's own
        named = error.data.get("msg_id") if isinstance(error.data, dict) else None
        return cls(error.message, metadata={"request_id": named if isinstance(named, str) else message_id})
    return cls(error.message, metadata={"region": region})


def _from_error(region: str, message_id: str, error: ErrorAnswer) -> YikatongError:
    if error.status == 503 or error.code in dialect.UNAVAILABLE:
        return RegionUnavailable(  # it answered: it may have got the request
            region, f"the region is down or busy ({error.code} {error.message})", may_have_reached=True
        )
    refusal = dialect.REFUSALS.refusal(error.code)
    if refusal is None:  # includes -32001: our channel key was refused, a configuration fault
        return RegionProtocolError(region, f"unexpected error object: {error}")
    try:
        return _refusal(refusal, error, region, message_id)
    except (ValueError, KeyError) as exc:  # a FieldError, or an op code the dialect does not know
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
    with http.translated_errors(region, partial(_from_error, region, message_id)):
        yield


def request(call_id: int, method: dialect.Method, params: Mapping[str, Any]) -> bytes:
    """One JSON-RPC request object, as sent."""
    return dumps({"jsonrpc": dialect.JSONRPC, "id": call_id, "method": method.value, "params": dict(params)})


def response(http_status: int, payload: bytes, call_id: int) -> Fields:
    """The ``result`` of the answer to call ``call_id``.

    Raises:
        ErrorAnswer: the answer is a JSON-RPC error object (or an HTTP 503 without one).
        WireError: the answer is not a JSON-RPC 2.0 response to this call.
    """
    try:
        answer = loads(http_status, payload)
    except WireError:
        if http_status == 503:  # a proxy in front of the region may answer for it
            raise ErrorAnswer(503, dialect.Code.SYSTEM_DOWN, "HTTP 503 without a JSON-RPC body") from None
        raise
    if answer.value("jsonrpc", str) != dialect.JSONRPC:
        raise answer.error("jsonrpc", f"must be {dialect.JSONRPC!r}")
    answered = answer.data.get("id")
    if "error" in answer.data:
        error = answer.nested("error")
        if answered not in (call_id, None):  # null: the region failed the call before reading it
            raise answer.error("id", f"of an error answers call {answered!r}, not {call_id}")
        code, message = error.value("code", int), error.value("message", str)
        raise ErrorAnswer(http_status, code, message, error.data.get("data"))
    if answered != call_id or isinstance(answered, bool):
        raise answer.error("id", f"of a result answers call {answered!r}, not {call_id}")
    if http_status != 200 or "result" not in answer.data:
        raise WireError(f"HTTP {http_status} answer without an error carries no result")
    return Fields(answer.data["result"], "result")


class RpcClient:
    """Calls the region's JSON-RPC endpoint over one pooled aiohttp session.

    Args:
        region_id: the region's id, named in every error raised.
        endpoint: the region's base URL, e.g. ``https://127.0.0.1:7114``; calls go to ``<endpoint>/rpc``.
        api_key: the channel key the region issued to the hub, sent as ``Authorization: Bearer``.
        tls: the link's TLS (None: the system's roots, no client certificate).
    """

    def __init__(self, region_id: str, endpoint: str, api_key: str, tls: ClientTls | None = None) -> None:
        self.region_id = region_id
        self.url = endpoint.rstrip("/") + dialect.PATH
        self._authorization = f"Bearer {api_key}"
        self._ids = itertools.count(1)
        self._http = http.HttpSession(region_id, tls)

    async def start(self) -> None:
        """Open the HTTP session."""
        await self._http.start()

    async def close(self) -> None:
        """Close the HTTP session and its pooled connections."""
        await self._http.close()

    async def call(
        self,
        method: dialect.Method,
        params: Mapping[str, Any],
        decode: Callable[[Fields], T],
        *,
        timeout: float,
        message_id: str = "",
    ) -> T:
        """Call one method and decode its result.

        Args:
            method: the method to call.
            params: its params object.
            decode: turns the result into the caller's value; a ``ValueError`` it raises (a
                ``FieldError``) means the result was unreadable.
            timeout: seconds the whole call may take.
            message_id: a write's message id, sent as ``Idempotency-Key``; the region deduplicates on it.

        Returns:
            What ``decode`` made of the result.

        Raises:
            Refusal, RegionUnavailable, RegionTimeout, RegionProtocolError: see :func:`translated_errors`.
        """
        call_id = next(self._ids)
        headers = {dialect.AUTHORIZATION_HEADER: self._authorization, "Content-Type": "application/json"}
        if message_id:
            headers[dialect.IDEMPOTENCY_HEADER] = message_id
        with translated_errors(self.region_id, message_id):
            body = request(call_id, method, params)
            status, payload = await self._http.exchange("POST", self.url, timeout=timeout, data=body, headers=headers)
            return decode(response(status, payload, call_id))
