"""The interceptor chain: request id → metrics → deadline → access log → errors → region auth → servicer.

Each interceptor is an async callable ``(request, context, state, proceed)`` that calls ``proceed()`` for the
rest of the chain. :class:`ChainInterceptor` runs the chain around every unary gRPC method. It also decodes
requests itself so that undecodable bytes become ``INVALID_ARGUMENT`` instead of grpc's ``INTERNAL``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, cast

import grpc
from grpc_status import rpc_status

from adapters.errors import InvalidArgument, RegionNotAuthenticated, YikatongError
from gateway import callstate
from gateway.callstate import CallState
from gateway.masking import mask_text
from gateway.metrics import Metrics
from gateway.status import code_of, to_status

log = logging.getLogger("yikatong.access")
errlog = logging.getLogger("yikatong.errors")

Proceed = Callable[[], Awaitable[Any]]


class Interceptor(Protocol):
    async def __call__(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], state: CallState, proceed: Proceed
    ) -> Any: ...


class _Undecodable:
    """Stands for request bytes that did not parse."""


UNDECODABLE = _Undecodable()


def _metadata(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str:
    for name, value in context.invocation_metadata() or ():
        if name == key and isinstance(value, str):
            return value
    return ""


class RequestIdInterceptor:
    """Takes the caller's ``x-request-id`` (or the request's ``request_id``), else makes one; echoes it back."""

    async def __call__(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], state: CallState, proceed: Proceed
    ) -> Any:
        given = _metadata(context, "x-request-id") or str(getattr(request, "request_id", ""))
        valid = 0 < len(given) <= 64 and all(" " < c <= "~" for c in given)
        state.request_id = given if valid else uuid.uuid4().hex
        state.caller = _metadata(context, "x-caller-id")[:64] or (context.peer() or "")
        context.set_trailing_metadata((("x-request-id", state.request_id),))
        return await proceed()


class MetricsInterceptor:
    """``grpc_server_*`` per method and code, and the same per region pair (DESIGN §7)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], state: CallState, proceed: Proceed
    ) -> Any:
        _, service, method = state.method.split("/", 2) if state.method.count("/") == 2 else ("", "", state.method)
        labels = ("unary", service, method)
        self.metrics.rpc_started.labels(*labels).inc()
        started = time.perf_counter()
        try:
            return await proceed()
        finally:
            seconds = time.perf_counter() - started
            code = state.code or "CANCELLED"
            self.metrics.rpc_handled.labels(*labels, code).inc()
            self.metrics.rpc_seconds.labels(*labels).observe(seconds)
            pair = (method, state.region or "none", state.venue_region or "none")
            self.metrics.pair_requests.labels(*pair, code).inc()
            self.metrics.pair_seconds.labels(*pair).observe(seconds)


class DeadlineInterceptor:
    """Fixes the call's deadline: the caller's, or the hub's default when it sent none."""

    def __init__(self, default_seconds: float) -> None:
        self.default_seconds = default_seconds

    async def __call__(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], state: CallState, proceed: Proceed
    ) -> Any:
        remaining = context.time_remaining()
        budget = self.default_seconds if remaining is None or remaining > 1e6 else remaining
        state.deadline = time.monotonic() + budget
        return await proceed()


class AccessLogInterceptor:
    """One structured line per RPC; personal numbers masked."""

    async def __call__(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], state: CallState, proceed: Proceed
    ) -> Any:
        started = time.perf_counter()
        try:
            return await proceed()
        finally:
            line = {
                "method": state.method,
                "caller": state.caller,
                "region": state.region,
                "code": state.code,
                "attempts": state.attempts,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "request_id": state.request_id,
            }
            if state.error:
                line["error"] = mask_text(state.error)
            log.info(json.dumps(line, ensure_ascii=False))


class ErrorInterceptor:
    """Turns domain errors into ``google.rpc.Status`` via the one table; anything else is a bug → INTERNAL."""

    async def __call__(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], state: CallState, proceed: Proceed
    ) -> Any:
        try:
            if request is UNDECODABLE:
                raise InvalidArgument("request", "is not a valid protobuf message for this method")
            response = await proceed()
        except YikatongError as exc:
            state.code, state.error = code_of(exc).name, f"{exc.reason}: {exc.message}"
            await cast(Any, context).abort_with_status(rpc_status.to_status(to_status(exc)))
        except Exception as exc:  # a defect of ours: log it, never leak it
            state.code, state.error = "INTERNAL", type(exc).__name__
            errlog.exception("unexpected error in %s", state.method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        state.code = "OK"
        return response


class InFlight:
    """How many unary calls are being served; shutdown waits for none."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if not self.count:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """True when no call is in flight within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


class RegionAuthInterceptor:
    """Calls meant for region back-ends (``RegionEventService``) must carry their region's ``x-region-token``."""

    SERVICE = "/yikatong.v1.RegionEventService/"

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self.tokens = {region: token for region, token in tokens.items() if token}

    async def __call__(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], state: CallState, proceed: Proceed
    ) -> Any:
        if state.method.startswith(self.SERVICE):
            region = str(getattr(getattr(request, "event", None), "region", ""))
            given, expected = _metadata(context, "x-region-token"), self.tokens.get(region, "")
            if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
                raise RegionNotAuthenticated(region[:64])
            state.caller = f"region:{region}"
        return await proceed()


class ChainInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Runs a chain of :class:`Interceptor` around every unary-unary method, counting the calls in flight."""

    def __init__(self, chain: Sequence[Interceptor], in_flight: InFlight | None = None) -> None:
        self.chain = tuple(chain)
        self.in_flight = in_flight or InFlight()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method, inner, decode = handler_call_details.method, handler.unary_unary, handler.request_deserializer

        def safe_decode(data: bytes) -> Any:
            try:
                return decode(data) if decode else data
            except Exception:
                return UNDECODABLE

        async def behaviour(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            state = CallState(method=method)
            token = callstate.begin(state)
            self.in_flight.enter()
            try:
                return await self._run(0, request, context, state, inner)
            finally:
                self.in_flight.leave()
                callstate.end(token)

        return grpc.unary_unary_rpc_method_handler(
            behaviour, request_deserializer=safe_decode, response_serializer=handler.response_serializer
        )

    async def _run(self, i: int, request: Any, context: Any, state: CallState, inner: Any) -> Any:
        if i == len(self.chain):
            return await inner(request, context)
        return await self.chain[i](request, context, state, lambda: self._run(i + 1, request, context, state, inner))
