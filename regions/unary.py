"""A grpc.aio server interceptor around the unary calls of a sandbox's gRPC server (the tap, the fault knobs)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, cast

import grpc

Unary = Callable[[Any, Any], Awaitable[Any]]
"""A unary behaviour on a grpc.aio server: (request, context) → response."""


class UnaryInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps the behaviour of every unary method (:meth:`wrap`); streams and unknown methods pass untouched."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        # grpc-stubs types handlers as synchronous; on a grpc.aio server they are coroutines.
        inner = cast(Unary, handler.unary_unary)
        return grpc.unary_unary_rpc_method_handler(
            self.wrap(inner, handler_call_details),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    @abstractmethod
    def wrap(self, inner: Unary, details: grpc.HandlerCallDetails) -> Unary:
        """The behaviour to serve the method ``details`` names with, around its own ``inner``."""
