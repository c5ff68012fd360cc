"""The hub assembled: ledger, federation, directory, gRPC server and admin server.

``Hub.start()`` binds the gRPC and admin ports (0 picks free ones) and returns when both serve;
``Hub.stop()`` turns health to NOT_SERVING, stops accepting, lets in-flight calls finish within the grace
period, then closes the adapters and the ledger.
"""

from __future__ import annotations

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from adapters.registry import AdapterRegistry
from gateway.admin import admin_app, start_admin
from gateway.config import HubConfig
from gateway.directory import HolderDirectory, load_key
from gateway.federation import Federation
from gateway.idempotency import Idempotency
from gateway.interceptors import (
    AccessLogInterceptor,
    ChainInterceptor,
    DeadlineInterceptor,
    ErrorInterceptor,
    Interceptor,
    RequestIdInterceptor,
)
from gateway.ledger import SqliteLedger
from gateway.metrics import Metrics
from gateway.servicers import CardAffairsServicer, CardLookup, CardServicer, FederationServicer
from yikatong.v1 import (
    card_affairs_pb2,
    card_affairs_pb2_grpc,
    card_pb2,
    card_pb2_grpc,
    federation_pb2,
    federation_pb2_grpc,
)

SERVICES = (
    card_pb2.DESCRIPTOR.services_by_name["CardService"].full_name,
    card_affairs_pb2.DESCRIPTOR.services_by_name["CardAffairsService"].full_name,
    federation_pb2.DESCRIPTOR.services_by_name["FederationService"].full_name,
)


async def create_server(hub: Hub, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """The gRPC server with every service, health and reflection; returns it and its bound port."""
    chain: list[Interceptor] = [
        RequestIdInterceptor(),
        DeadlineInterceptor(hub.config.default_deadline_seconds),
        AccessLogInterceptor(),
        ErrorInterceptor(),
    ]
    server = grpc.aio.server(interceptors=[ChainInterceptor(chain)])
    lookup = CardLookup(hub.federation, hub.directory)
    card_pb2_grpc.add_CardServiceServicer_to_server(CardServicer(lookup), server)
    card_affairs_pb2_grpc.add_CardAffairsServiceServicer_to_server(CardAffairsServicer(lookup, hub.idempotency), server)
    federation_pb2_grpc.add_FederationServiceServicer_to_server(FederationServicer(hub.federation), server)
    health_pb2_grpc.add_HealthServicer_to_server(hub.health, server)
    reflection.enable_server_reflection((*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not bind the gRPC port {host}:{port}")
    return server, bound


class Hub:
    """One hub process."""

    def __init__(
        self, config: HubConfig, registry: AdapterRegistry | None = None, metrics: Metrics | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.ledger = SqliteLedger(config.ledger_path, lease_seconds=config.idempotency_lease_seconds)
        self.idempotency = Idempotency(self.ledger)
        self.federation = Federation(config, registry or AdapterRegistry.from_entry_points())
        self.directory = HolderDirectory(
            load_key(config.directory_key_file),
            self.metrics,
            ttl_seconds=config.directory_ttl_seconds,
            max_entries=config.directory_max_entries,
        )
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]  # stubs lack the aio servicer
        self.port = 0
        self.admin_port = 0
        self._server: grpc.aio.Server | None = None
        self._admin: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.config.host}:{self.admin_port}"

    def readiness(self) -> dict[str, bool]:
        checks = {"ledger_open": self.ledger.is_open}
        checks.update({f"region_probed:{r}": reg.probed for r, reg in self.federation.regions.items()})
        return checks

    async def start(self) -> None:
        self._admin, self.admin_port = await start_admin(
            admin_app(self.metrics.registry, self.readiness), self.config.host, self.config.admin_port
        )
        await self.ledger.open()
        await self.federation.start()
        self._server, self.port = await create_server(self, self.config.host, self.config.port)
        await self._server.start()
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        if self._server:
            await self._server.stop(grace)
        await self.federation.close()
        await self.ledger.close()
        if self._admin:
            await self._admin.cleanup()
