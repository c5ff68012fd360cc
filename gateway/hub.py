"""The hub assembled: the ledger, the application services, the gRPC API server and the admin server.

``Hub.start()`` opens the ledger, voids what a crash left pending, starts the federation (adapters and probes)
and the outbox, and binds the gRPC and admin ports (0 picks free ones). ``Hub.stop()`` (DESIGN §7) turns
health to NOT_SERVING and readiness false, keeps serving for the drain period so load balancers move away, then
refuses new calls and lets in-flight unary calls finish within the grace period (streams such as health watches
end as soon as those are done), stops the outbox (its undelivered items stay in the ledger), closes the adapters
and closes the ledger cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp import web

from adapters.registry import AdapterRegistry
from gateway.admin import admin_app, start_admin
from gateway.api.server import ApiServer
from gateway.config import HubConfig
from gateway.ledger import SqliteLedger
from gateway.metrics import Metrics
from gateway.services import assemble
from regions.agreements import load_agreements
from regions.config import ConfigError

log = logging.getLogger("yikatong.hub")


class HubClock:
    """Wall time plus an offset, so tests and game days can move the hub into another clearing period."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Hub:
    """One hub process.

    Args:
        config: the validated configuration.
        registry: the installed adapters (default: the entry points).
        metrics: the metrics registry (default: a new one).
        clock: wall time for the ledger and the services (default: a :class:`HubClock`).
    """

    def __init__(
        self,
        config: HubConfig,
        registry: AdapterRegistry | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.clock = HubClock()
        now = clock or self.clock.now
        self.ledger = SqliteLedger(
            config.ledger_path,
            lease_seconds=config.idempotency_lease_seconds,
            clock=now,
            busy_timeout_ms=config.ledger_busy_timeout_ms,
            on_commit=self.metrics.ledger_commit,
        )
        self.agreements_file = config.agreements_file
        self._agreements = load_agreements(self.agreements_file, config.regions)
        self.services = assemble(
            config,
            self.ledger,
            registry or AdapterRegistry.from_entry_points(),
            self.metrics,
            lambda: self._agreements,
            now,
        )
        self.federation = self.services.federation
        self.api = ApiServer(
            self.services,
            self.metrics,
            default_deadline_seconds=config.default_deadline_seconds,
            region_tokens={r.region_id: r.options.get("event_token", "") for r in config.regions},
        )
        self.port = 0
        self.admin_port = 0
        self.draining = False
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
        voided = await self.services.settlements.recover()
        if voided:
            log.warning("voided %d settlements left unanswered by the last run; corrections queued", len(voided))
        await self.federation.start()
        self.services.outbox.start()
        self.port = await self.api.start(self.config.host, self.config.port)

    async def stop(self, grace: float | None = None, drain: float | None = None) -> None:
        """Drain and stop (module docstring); ``grace`` and ``drain`` default to the configuration's."""
        self.draining = True
        await self.api.drain()
        await asyncio.sleep(self.config.drain_seconds if drain is None else drain)
        await self.api.stop(self.config.shutdown_grace_seconds if grace is None else grace)
        await self.services.outbox.close()
        await self.federation.close()
        await self.ledger.close()
        if self._admin:
            await self._admin.cleanup()
