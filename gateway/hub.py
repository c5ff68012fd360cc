"""The hub assembled: ledger, federation, directory, settlement, clearing, resident services, outbox, e-card
verifier, gRPC server and admin server.

``Hub.start()`` binds the gRPC and admin ports (0 picks free ones) and returns when both serve;
``Hub.stop()`` (DESIGN §7) turns health to NOT_SERVING and readiness false, keeps serving for the drain
period so load balancers move away, then refuses new calls and lets in-flight unary calls finish within the
grace period (streams such as health watches end as soon as those are done), stops the outbox (its
undelivered items stay in the ledger), closes the adapters and closes the ledger cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from adapters.registry import AdapterRegistry
from gateway.admin import admin_app, start_admin
from gateway.clearing import Clearing
from gateway.config import HubConfig
from gateway.directory import HolderDirectory, load_key
from gateway.ecard import TokenVerifier
from gateway.federation import Federation
from gateway.idempotency import Idempotency
from gateway.interceptors import (
    AccessLogInterceptor,
    ChainInterceptor,
    DeadlineInterceptor,
    ErrorInterceptor,
    InFlight,
    Interceptor,
    MetricsInterceptor,
    RegionAuthInterceptor,
    RequestIdInterceptor,
)
from gateway.lookup import CardLookup
from gateway.metrics import Metrics
from gateway.outbox import Outbox
from gateway.resident import Resident, StatusCache
from gateway.servicers import (
    CardAffairsServicer,
    CardServicer,
    ClearingServicer,
    FederationServicer,
    MedicalSettlementServicer,
    RegionEventServicer,
    ResidentServicer,
)
from gateway.settlement import Settlements
from gateway.sqlite_ledger import SqliteLedger
from regions.agreements import load_agreements
from regions.config import ConfigError
from yikatong.v1 import (
    card_affairs_pb2,
    card_affairs_pb2_grpc,
    card_pb2,
    card_pb2_grpc,
    clearing_pb2,
    clearing_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    federation_pb2,
    federation_pb2_grpc,
    resident_pb2,
    resident_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
)

log = logging.getLogger("yikatong.hub")

SERVICES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (card_pb2, "CardService"),
        (card_affairs_pb2, "CardAffairsService"),
        (settlement_pb2, "MedicalSettlementService"),
        (clearing_pb2, "ClearingService"),
        (resident_pb2, "ResidentService"),
        (events_pb2, "RegionEventService"),
        (federation_pb2, "FederationService"),
    )
)


async def create_server(hub: Hub, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """The gRPC server with every service, health and reflection; returns it and its bound port."""
    chain: list[Interceptor] = [
        RequestIdInterceptor(),
        MetricsInterceptor(hub.metrics),
        DeadlineInterceptor(hub.config.default_deadline_seconds),
        AccessLogInterceptor(),
        ErrorInterceptor(),
        RegionAuthInterceptor({r.region_id: r.options.get("event_token", "") for r in hub.config.regions}),
    ]
    server = grpc.aio.server(interceptors=[ChainInterceptor(chain, hub.in_flight)])
    card_pb2_grpc.add_CardServiceServicer_to_server(CardServicer(hub.lookup), server)
    card_affairs_pb2_grpc.add_CardAffairsServiceServicer_to_server(
        CardAffairsServicer(hub.lookup, hub.idempotency), server
    )
    settlement_pb2_grpc.add_MedicalSettlementServiceServicer_to_server(
        MedicalSettlementServicer(hub.settlements, hub.idempotency), server
    )
    clearing_pb2_grpc.add_ClearingServiceServicer_to_server(ClearingServicer(hub.clearing, hub.idempotency), server)
    resident_pb2_grpc.add_ResidentServiceServicer_to_server(ResidentServicer(hub.resident), server)
    events_pb2_grpc.add_RegionEventServiceServicer_to_server(
        RegionEventServicer(hub.resident, hub.directory, hub.metrics), server
    )
    federation_pb2_grpc.add_FederationServiceServicer_to_server(FederationServicer(hub.federation), server)
    health_pb2_grpc.add_HealthServicer_to_server(hub.health, server)
    reflection.enable_server_reflection((*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not bind the gRPC port {host}:{port}")
    return server, bound


class HubClock:
    """Wall time plus an offset, so tests and game days can move the hub into another clearing period."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Hub:
    """One hub process."""

    def __init__(
        self, config: HubConfig, registry: AdapterRegistry | None = None, metrics: Metrics | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.ledger = SqliteLedger(config.ledger_path, lease_seconds=config.idempotency_lease_seconds)
        self.idempotency = Idempotency(self.ledger)
        self.federation = Federation(config, registry or AdapterRegistry.from_entry_points(), self.metrics)
        key = load_key(config.directory_key_file)  # keys the hashes of SSNs and card numbers the hub keeps
        self.directory = HolderDirectory(
            key,
            self.metrics,
            ttl_seconds=config.directory_ttl_seconds,
            max_entries=config.directory_max_entries,
        )
        self.clock = HubClock()
        tokens = TokenVerifier(
            config.ecard_keys,
            self.ledger,
            clock=self.clock.now,
            skew_seconds=config.ecard_clock_skew_seconds,
            max_ttl_seconds=config.ecard_max_ttl_seconds,
        )
        self.lookup = CardLookup(self.federation, self.directory, tokens, self.metrics)
        self.outbox = Outbox(self.ledger, self.federation, self.metrics, self.clock.now)
        self.settlements = Settlements(self.lookup, self.ledger, self.outbox, self.metrics, self.clock.now)
        self.clearing = Clearing(self.ledger, self.federation, self.clock.now)
        self.agreements_file = config.agreements_file
        self._agreements = load_agreements(self.agreements_file, config.regions)
        self.resident = Resident(
            self.lookup,
            lambda: self._agreements,
            StatusCache(key, config.status_cache_max_entries, self.clock.now),
            self.ledger,
            self.outbox,
            self.metrics,
            cache_seconds=config.status_cache_seconds,
            stand_in_seconds=config.stand_in_seconds,
            clock=self.clock.now,
        )
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]  # stubs lack the aio servicer
        self.port = 0
        self.admin_port = 0
        self.draining = False
        self.in_flight = InFlight()
        self._server: grpc.aio.Server | None = None
        self._admin: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.config.host}:{self.admin_port}"

    def readiness(self) -> dict[str, bool]:
        checks = {"ledger_open": self.ledger.is_open, "not_draining": not self.draining}
        checks.update({f"region_probed:{r}": reg.probed for r, reg in self.federation.regions.items()})
        return checks

    def reload_agreements(self) -> bool:
        """Read the agreements file again and swap the table in whole; a bad file is refused and logged.

        Returns:
            True when the new table is in force.
        """
        try:
            self._agreements = load_agreements(self.agreements_file, self.config.regions)
        except ConfigError as exc:
            log.error("agreements file refused, keeping the agreements in force: %s", exc)
            return False
        log.info("agreements reloaded from %s: %d grants", self.agreements_file, len(self._agreements.grants))
        return True

    async def start(self) -> None:
        self._admin, self.admin_port = await start_admin(
            admin_app(self.metrics.registry, self.readiness), self.config.host, self.config.admin_port
        )
        await self.ledger.open()
        voided = await self.ledger.recover_pending(self.clock.now())
        if voided:
            log.warning("voided %d settlements left unanswered by the last run; corrections queued", len(voided))
        await self.federation.start()
        self.outbox.start()
        self._server, self.port = await create_server(self, self.config.host, self.config.port)
        await self._server.start()
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None = None, drain: float | None = None) -> None:
        """Drain and stop (module docstring); ``grace`` and ``drain`` default to the configuration's."""
        self.draining = True
        await self.health.enter_graceful_shutdown()
        await asyncio.sleep(self.config.drain_seconds if drain is None else drain)
        if self._server:
            grace = self.config.shutdown_grace_seconds if grace is None else grace
            stopping = asyncio.create_task(self._server.stop(grace))  # refuses new calls from now on
            if not await self.in_flight.wait_idle(grace):
                log.warning(
                    "%d calls still in flight after the %.1f s grace; they are cancelled", self.in_flight.count, grace
                )
            await self._server.stop(0)  # long-lived streams (health watches) end now, not at the end of the grace
            await stopping
        await self.outbox.close()
        await self.federation.close()
        await self.ledger.close()
        if self._admin:
            await self._admin.cleanup()
