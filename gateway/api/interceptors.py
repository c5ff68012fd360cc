"""The interceptor chain: request id → metrics → deadline → access log → errors → identity → authorization →
rate limit → servicer (the last three in ``gateway.api.authorization``).

An interceptor wraps the handler of one method: :meth:`Interceptor.wrap` takes the method's name and the rest of
the chain, and returns a handler ``(request, context, call) → response``. The server composes every method's
chain once, at start, so per-call work is only what each interceptor does for the call. Every handler gets the
:class:`~gateway.services.call.Call` of the RPC, which carries what the layers below record (region, attempts)
back to the access log and the metrics.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import grpc
from grpc_status import rpc_status

from adapters.errors import YikatongError
from gateway.api.status import code_of, to_status
from gateway.masking import mask_text
from gateway.metrics import Metrics
from gateway.services.call import Call

log = logging.getLogger("yikatong.access")
errlog = logging.getLogger("yikatong.errors")

Context = grpc.aio.ServicerContext[Any, Any]
Handler = Callable[[Any, Context, Call], Awaitable[Any]]


class Interceptor(Protocol):
    def wrap(self, method: str, proceed: Handler) -> Handler:
        """The handler of ``method`` that does this interceptor's part around ``proceed``."""
        ...


def compose(chain: tuple[Interceptor, ...], method: str, endpoint: Handler) -> Handler:
    """``endpoint`` wrapped by the chain, the first interceptor outermost."""
    handler = endpoint
    for interceptor in reversed(chain):
        handler = interceptor.wrap(method, handler)
    return handler


class Unreadable:
    """Stands for request bytes the server did not decode: unparseable, or over the size limit."""

    def __init__(self, error: YikatongError) -> None:
        self.error = error


def metadata_value(context: Context, key: str) -> str:
    """The first string value of an invocation metadata key ("" when absent)."""
    for name, value in context.invocation_metadata() or ():
        if name == key and isinstance(value, str):
            return value
    return ""


class RequestIdInterceptor:
    """Takes the caller's ``x-request-id`` (or the request's ``request_id``), else makes one; echoes it back."""

    def wrap(self, method: str, proceed: Handler) -> Handler:
        async def handle(request: Any, context: Context, call: Call) -> Any:
            given = metadata_value(context, "x-request-id") or str(getattr(request, "request_id", ""))
            valid = 0 < len(given) <= 64 and all(" " < c <= "~" for c in given)
            call.request_id = given if valid else f"{random.getrandbits(128):032x}"  # a log's id: uuid4 is slower
            call.caller_hint = metadata_value(context, "x-caller-id")[:64] or (context.peer() or "")
            context.set_trailing_metadata((("x-request-id", call.request_id),))
            return await proceed(request, context, call)

        return handle


class MetricsInterceptor:
    """``grpc_server_*`` per method and code, and the same per region pair (DESIGN §7)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def wrap(self, method: str, proceed: Handler) -> Handler:
        _, service, name = method.split("/", 2)
        labels = ("unary", service, name)
        m = self.metrics
        started, seconds = m.rpc_started.labels(*labels), m.rpc_seconds.labels(*labels)
        handled: dict[str, Any] = {}  # the label children of this method, resolved once each
        pairs: dict[tuple[str, str, str], tuple[Any, Any]] = {}

        async def handle(request: Any, context: Context, call: Call) -> Any:
            started.inc()
            begun = time.perf_counter()
            try:
                return await proceed(request, context, call)
            finally:
                took = time.perf_counter() - begun
                code = call.code or "CANCELLED"
                counter = handled.get(code) or handled.setdefault(code, m.rpc_handled.labels(*labels, code))
                counter.inc()
                seconds.observe(took)
                pair = (call.region or "none", call.venue_region or "none", code)
                children = pairs.get(pair)
                if children is None:
                    children = pairs[pair] = (
                        m.pair_requests.labels(name, *pair),
                        m.pair_seconds.labels(name, pair[0], pair[1]),
                    )
                children[0].inc()
                children[1].observe(took)

        return handle


class DeadlineInterceptor:
    """Fixes the call's deadline: the caller's, or the hub's default when it sent none."""

    def __init__(self, default_seconds: float) -> None:
        self.default_seconds = default_seconds

    def wrap(self, method: str, proceed: Handler) -> Handler:
        async def handle(request: Any, context: Context, call: Call) -> Any:
            remaining = context.time_remaining()
            budget = self.default_seconds if remaining is None or remaining > 1e6 else remaining
            call.deadline = time.monotonic() + budget
            return await proceed(request, context, call)

        return handle


class AccessLine:
    """One access-log line, made into JSON (and its error text masked) only when a handler writes it — on the
    log writer's thread, off the event loop (``gateway.cli`` queues log records to a listener thread)."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, object]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        fields = self.fields
        if fields.get("error"):
            fields = {**fields, "error": mask_text(str(fields["error"]))}
        return json.dumps(fields, ensure_ascii=False)


class AccessLogInterceptor:
    """One structured line per RPC; personal numbers masked."""

    def wrap(self, method: str, proceed: Handler) -> Handler:
        async def handle(request: Any, context: Context, call: Call) -> Any:
            begun = time.perf_counter()
            try:
                return await proceed(request, context, call)
            finally:
                if log.isEnabledFor(logging.INFO):
                    fields: dict[str, object] = {
                        "method": method,
                        "caller": call.participant,
                        "caller_hint": call.caller_hint,
                        "region": call.region,
                        "code": call.code,
                        "attempts": call.attempts,
                        "duration_ms": round((time.perf_counter() - begun) * 1000, 2),
                        "request_id": call.request_id,
                    }
                    if call.error:
                        fields["error"] = call.error
                    log.info("%s", AccessLine(fields))

        return handle


class ErrorInterceptor:
    """Turns domain errors into ``google.rpc.Status`` via the one table; anything else is a bug → INTERNAL."""

    def wrap(self, method: str, proceed: Handler) -> Handler:
        async def handle(request: Any, context: Context, call: Call) -> Any:
            try:
                if isinstance(request, Unreadable):
                    raise request.error
                response = await proceed(request, context, call)
            except YikatongError as exc:
                call.code, call.error = code_of(exc).name, f"{exc.reason}: {exc.message}"
                await cast(Any, context).abort_with_status(rpc_status.to_status(to_status(exc)))
            except Exception as exc:  # a defect of ours: log it, never leak it
                call.code, call.error = "INTERNAL", type(exc).__name__
                errlog.exception("unexpected error in %s", method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            call.code = "OK"
            return response

        return handle
