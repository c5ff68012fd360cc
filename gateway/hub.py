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
from gateway.config import HubConfig, is_loopback
from gateway.ledger import Ledger, SqliteLedger
from gateway.ledger.postgres import PostgresLedger
from gateway.metrics import Metrics
from gateway.participants import load_participants
from gateway.services import assemble
from gateway.services.broadcast import Alone, Broadcast, PostgresBroadcast
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


def check_transport(config: HubConfig) -> None:
    """Refuse plaintext off loopback, and mutual TLS without its files, with what to do instead.

    Raises:
        ConfigError: naming the setting.
    """
    if config.insecure:
        if not is_loopback(config.host):
            raise ConfigError(
                "--insecure", "host", config.host, "plaintext is refused off loopback: serve mutual TLS (DESIGN §10)"
            )
        return
    for name, path in (("ca_file", config.tls.ca), ("cert_file", config.tls.cert), ("key_file", config.tls.key)):
        if not path.exists():
            raise ConfigError(
                path,
                f"tls.{name}",
                str(path),
                "not found: `yikatong pki init --dir <data-dir>/pki` makes a development PKI",
            )


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
        self.ledger: Ledger
        if config.ledger_url:
            self.ledger = PostgresLedger(
                config.ledger_url,
                lease_seconds=config.idempotency_lease_seconds,
                clock=now,
                on_commit=self.metrics.ledger_commit,
            )
        else:
            self.ledger = SqliteLedger(
                config.ledger_path,
                lease_seconds=config.idempotency_lease_seconds,
                clock=now,
                busy_timeout_ms=config.ledger_busy_timeout_ms,
                on_commit=self.metrics.ledger_commit,
            )
        self.agreements_file = config.agreements_file
        self._agreements = load_agreements(self.agreements_file, config.regions)
        self.participants = load_participants(config.participants_file)
        self.broadcast: Broadcast = (
            PostgresBroadcast(config.ledger_url, self.ledger.replica) if config.ledger_url else Alone()
        )
        self.services = assemble(
            config,
            self.ledger,
            registry or AdapterRegistry.from_entry_points(),
            self.metrics,
            lambda: self._agreements,
            now,
            self.broadcast,
        )
        self.federation = self.services.federation
        self.api = ApiServer(
            self.services,
            self.metrics,
            lambda: self.participants,
            tls=None if config.insecure else config.tls,
            limits=config.limits,
            default_deadline_seconds=config.default_deadline_seconds,
            share_port=bool(config.ledger_url),
        )
        self.port = 0
        self.admin_port = 0
        self.draining = False
        self._admin: web.AppRunner | None = None
        self._watch: asyncio.Task[None] | None = None

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

    def reload(self) -> bool:
        """Read the agreements and participants files again (SIGHUP); each is swapped in whole, and a bad file
        is refused and logged with the table in force kept.

        Returns:
            True when both new tables are in force.
        """
        try:
            self._agreements = load_agreements(self.agreements_file, self.config.regions)
            log.info("agreements reloaded from %s: %d grants", self.agreements_file, len(self._agreements.grants))
        except ConfigError as exc:
            log.error("agreements file refused, keeping the agreements in force: %s", exc)
            return False
        try:
            self.participants = load_participants(self.config.participants_file)
            log.info("participants reloaded from %s: %d", self.config.participants_file, len(self.participants))
        except ConfigError as exc:
            log.error("participants file refused, keeping the participants in force: %s", exc)
            return False
        return True

    def _mtimes(self) -> tuple[float, ...]:
        files = (self.agreements_file, self.config.participants_file)
        return tuple(f.stat().st_mtime if f.exists() else 0.0 for f in files)

    async def _watch_files(self, every_seconds: float = 2.0) -> None:
        """Reload when the agreements or participants file changes, so that every replica picks a change up
        without a signal of its own (SIGHUP reloads at once)."""
        seen = self._mtimes()
        while True:
            await asyncio.sleep(every_seconds)
            now = self._mtimes()
            if now != seen:
                seen = now
                self.reload()

    async def start(self) -> None:
        check_transport(self.config)
        self._admin, self.admin_port = await start_admin(
            admin_app(self.metrics.registry, self.readiness), self.config.host, self.config.admin_port
        )
        await self.ledger.open()
        await self.broadcast.start(self.services.resident.hear)
        await self.federation.start()
        # With one process on its own ledger, no call of an earlier run is still going: every unresolved row is
        # swept now. Replicas share theirs: only rows past their lease are (another replica may be on the others).
        resolved = await self.services.sweeper.sweep(everything=not self.ledger.shared)
        if resolved:
            log.warning("resolved %d settlements an earlier run left unanswered", resolved)
        self.services.outbox.start()
        self.services.sweeper.start()
        self.services.auditor.start()
        self._watch = asyncio.create_task(self._watch_files())
        self.port = await self.api.start(self.config.host, self.config.port)

    async def stop(self, grace: float | None = None, drain: float | None = None) -> None:
        """Drain and stop (module docstring); ``grace`` and ``drain`` default to the configuration's."""
        self.draining = True
        if self._watch is not None:
            self._watch.cancel()
        await self.api.drain()
        await asyncio.sleep(self.config.drain_seconds if drain is None else drain)
        await self.api.stop(self.config.shutdown_grace_seconds if grace is None else grace)
        await self.services.sweeper.close()
        await self.services.outbox.close()
        await self.services.auditor.close()  # the chain ends on a signed checkpoint
        await self.broadcast.close()
        await self.federation.close()
        await self.ledger.close()
        if self._admin:
            await self._admin.cleanup()
