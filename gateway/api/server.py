"""The gRPC server factory: every service's methods behind the interceptor chain, health and reflection.

Each method's handler is composed once, when the server is built: the request is decoded (undecodable bytes
become ``INVALID_ARGUMENT``, not grpc's ``INTERNAL``), a :class:`~gateway.services.call.Call` is made for it,
and the chain runs around the servicer's method. :class:`ApiServer` starts and drains the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from adapters.errors import InvalidArgument
from gateway.api.authorization import AuthorizationInterceptor, IdentityInterceptor, RateLimitInterceptor
from gateway.api.interceptors import (
    AccessLogInterceptor,
    Context,
    DeadlineInterceptor,
    ErrorInterceptor,
    Handler,
    Interceptor,
    MetricsInterceptor,
    RequestIdInterceptor,
    Unreadable,
    compose,
)
from gateway.api.servicers import SERVICERS
from gateway.config import ServerLimits, TlsFiles
from gateway.errors import RequestTooLarge
from gateway.metrics import Metrics
from gateway.participants import Participants
from gateway.services import Services
from gateway.services.call import Call

log = logging.getLogger("yikatong.hub")

SERVICES = tuple(servicer.SERVICE.full_name for servicer in SERVICERS)


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


def _decoder(parse: Callable[[bytes], Any], limit: int) -> Callable[[bytes], Any]:
    """Decode a request; bytes over ``limit`` or that do not parse become an :class:`Unreadable` error."""
    undecodable = Unreadable(InvalidArgument("request", "is not a valid protobuf message for this method"))

    def decode(data: bytes) -> Any:
        if len(data) > limit:
            return Unreadable(RequestTooLarge(len(data), limit))
        try:
            return parse(data)
        except Exception:
            return undecodable

    return decode


def service_handler(
    servicer: Any, chain: tuple[Interceptor, ...], in_flight: InFlight, max_request_bytes: int
) -> grpc.GenericRpcHandler[Any, Any]:
    """The handlers of one servicer's methods, each behind the chain composed once."""
    service = servicer.SERVICE
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        name = f"/{service.full_name}/{method.name}"
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)
        handler = compose(chain, name, _endpoint(getattr(servicer, method.name)))
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _behaviour(name, handler, in_flight),
            request_deserializer=_decoder(request_type.FromString, max_request_bytes),
            response_serializer=response_type.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def _endpoint(method: Callable[[Any, Call], Any]) -> Handler:
    async def endpoint(request: Any, context: Context, call: Call) -> Any:
        return await method(request, call)

    return endpoint


def _behaviour(name: str, handler: Handler, in_flight: InFlight) -> Callable[[Any, Context], Any]:
    async def behaviour(request: Any, context: Context) -> Any:
        in_flight.enter()
        try:
            return await handler(request, context, Call(method=name))
        finally:
            in_flight.leave()

    return behaviour


def server_options(limits: ServerLimits, share_port: bool = False) -> list[tuple[str, Any]]:
    """grpc channel arguments of the server's limits. A request over ``max_receive_message_bytes`` is refused by
    the handler with ``REQUEST_TOO_LARGE``; grpc itself drops what is four times as large before reading it.

    ``share_port``: replicas on one machine bind one port (SO_REUSEPORT, the kernel spreads connections); a hub
    on its own ledger refuses to, so a second one started by mistake fails instead of splitting the traffic.
    """
    return [
        ("grpc.so_reuseport", int(share_port)),
        ("grpc.max_receive_message_length", 4 * limits.max_receive_message_bytes),
        ("grpc.max_connection_age_ms", int(limits.max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", int(limits.max_connection_age_grace_seconds * 1000)),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", int(limits.keepalive_min_ping_interval_seconds * 1000)),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    """Mutual TLS: the hub's certificate, and client certificates required to chain to the federation CA."""
    return grpc.ssl_server_credentials(
        [(tls.key.read_bytes(), tls.cert.read_bytes())], root_certificates=tls.ca.read_bytes(), require_client_auth=True
    )


class ApiServer:
    """The hub's gRPC server over its services.

    Args:
        services: the application services.
        metrics: where the RPC metrics go.
        participants: returns the participants in force.
        tls: the mutual-TLS files, or None to serve plaintext with every caller ``dev`` (loopback only; the hub
            checks).
        limits: the server's limits.
        default_deadline_seconds: the deadline of calls that bring none.
        share_port: whether other replicas may bind the same port (``server_options``).
    """

    def __init__(
        self,
        services: Services,
        metrics: Metrics,
        participants: Callable[[], Participants],
        *,
        tls: TlsFiles | None,
        limits: ServerLimits,
        default_deadline_seconds: float,
        share_port: bool = False,
    ) -> None:
        self.tls, self.limits, self.share_port = tls, limits, share_port
        self.in_flight = InFlight()
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]  # stubs lack the aio servicer
        chain: tuple[Interceptor, ...] = (
            RequestIdInterceptor(),
            MetricsInterceptor(metrics),
            DeadlineInterceptor(default_deadline_seconds),
            AccessLogInterceptor(),
            ErrorInterceptor(),
            IdentityInterceptor(participants, secure=tls is not None),
            AuthorizationInterceptor(metrics, services.auditor),
            RateLimitInterceptor(),
        )
        self._handlers = [
            service_handler(cls(services), chain, self.in_flight, limits.max_receive_message_bytes) for cls in SERVICERS
        ]
        self._server: grpc.aio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Bind and serve; returns the bound port (``port`` 0 picks a free one)."""
        server = grpc.aio.server(
            options=server_options(self.limits, self.share_port),
            maximum_concurrent_rpcs=self.limits.max_concurrent_rpcs,
        )
        server.add_generic_rpc_handlers(self._handlers)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection((*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        address = f"{host}:{port}"
        try:
            if self.tls is None:
                bound = server.add_insecure_port(address)
            else:
                bound = server.add_secure_port(address, server_credentials(self.tls))
        except RuntimeError:  # grpc's way of saying the port is taken
            bound = 0
        if bound == 0:
            raise OSError(f"could not bind the gRPC port {host}:{port} (in use?)")
        await server.start()
        self._server = server
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return bound

    async def drain(self) -> None:
        """Health turns NOT_SERVING; calls are still taken."""
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float) -> None:
        """Refuse new calls, let in-flight unary calls finish within ``grace``, then end every stream."""
        if self._server is None:
            return
        stopping = asyncio.create_task(self._server.stop(grace))  # refuses new calls from now on
        if not await self.in_flight.wait_idle(grace):
            log.warning(
                "%d calls still in flight after the %.1f s grace; they are cancelled", self.in_flight.count, grace
            )
        await self._server.stop(0)  # long-lived streams (health watches) end now, not at the end of the grace
        await stopping
