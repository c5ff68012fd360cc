"""What reached a sandbox's protocol server, request by request, as an eavesdropper on the link would have it.

The conformance suite sends captured requests again, as they were or altered, to check that a region refuses a
replay (:mod:`adapters.conformance.link_rules`). :func:`regions.sandbox.serve_http` taps every HTTP sandbox; a gRPC
sandbox adds :meth:`Wiretap.interceptor` to its server (as ``regions.jingjinji`` does). A sandbox only: the tap keeps
the last :data:`KEEP` requests in memory, headers and all.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from regions.unary import Unary, UnaryInterceptor

KEEP = 64


@dataclass(frozen=True)
class Captured:
    """One request as it reached the server.

    Attributes:
        transport: ``"http"`` or ``"grpc"``.
        method: the HTTP method, or ``"POST"`` for gRPC.
        target: the HTTP path and query exactly as on the request line; for gRPC the method's path
            (``/package.Service/Method``).
        headers: the HTTP headers or the gRPC metadata, in order.
        body: the raw HTTP body, or the serialized request message.
    """

    transport: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Wiretap:
    """The last :data:`KEEP` requests a sandbox's protocol server received, oldest first."""

    def __init__(self) -> None:
        self.requests: deque[Captured] = deque(maxlen=KEEP)

    def clear(self) -> None:
        """Forget what was recorded."""
        self.requests.clear()

    def middleware(self) -> Middleware:
        """An aiohttp middleware that records each request before anything else sees it."""

        @web.middleware
        async def tap(request: web.Request, handler: Handler) -> web.StreamResponse:
            body = await request.read()
            headers = tuple((k, v) for k, v in request.headers.items())
            self.requests.append(Captured("http", request.method, request.raw_path, headers, body))
            return await handler(request)

        return tap

    def interceptor(self) -> grpc.aio.ServerInterceptor:  # type: ignore[type-arg]
        """A grpc.aio server interceptor that records each unary call's request."""
        return _GrpcTap(self)


class _GrpcTap(UnaryInterceptor):
    def __init__(self, tap: Wiretap) -> None:
        self._tap = tap

    def wrap(self, inner: Unary, details: grpc.HandlerCallDetails) -> Unary:
        method = details.method
        metadata = tuple((str(k), v if isinstance(v, str) else bytes(v).hex()) for k, v in details.invocation_metadata)
        requests = self._tap.requests

        async def recorded(request: Any, context: Any) -> Any:
            requests.append(Captured("grpc", "POST", method, metadata, request.SerializeToString()))
            return await inner(request, context)

        return recorded
