"""The federated regions: routing by area code, the adapters, deadlines and health probing.

Routing (DESIGN §4.2): an area code's first two digits name the province; each province belongs to at most one
region. Every call to a region gets the caller's remaining time less a margin, capped per call; an adapter
that overruns it is cut off and reported as a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from adapters.errors import AdapterError, RegionNotFederated, RegionTimeout
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.registry import AdapterRegistry
from gateway import callstate
from gateway.config import HubConfig
from regions.config import RegionConfig

T = TypeVar("T")
log = logging.getLogger("yikatong.federation")


@dataclass
class Region:
    """A configured region with its adapter and what probing last found."""

    config: RegionConfig
    adapter: RegionAdapter
    healthy: bool = False
    probed: bool = False


class Federation:
    """The regions the hub routes to."""

    def __init__(self, config: HubConfig, registry: AdapterRegistry) -> None:
        self.config = config
        self.regions: dict[str, Region] = {}
        self._by_province: dict[str, str] = {}
        for rc in config.regions:
            cls = registry.get(rc.adapter)
            adapter = cls(AdapterSettings(rc.region_id, rc.endpoint, dict(rc.options)))
            self.regions[rc.region_id] = Region(rc, adapter)
            self._by_province.update(dict.fromkeys(rc.provinces, rc.region_id))
        self._probe_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for region in self.regions.values():
            await region.adapter.start()
        self._probe_task = asyncio.create_task(self._probe_forever())

    async def close(self) -> None:
        if self._probe_task:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
        for region in self.regions.values():
            await region.adapter.close()

    def region_for_area(self, area: str) -> str:
        """The region serving an area code's province."""
        region = self._by_province.get(area[:2])
        if region is None:
            raise RegionNotFederated(area[:2])
        return region

    def timeout(self) -> float:
        """Seconds the next region call may take: the caller's remaining time less the margin, capped."""
        remaining = callstate.current().remaining() - self.config.deadline_margin_seconds
        return min(remaining, self.config.call_timeout_seconds)

    def region_of_province(self, province: str) -> str:
        """The region serving a two-digit province code ("" when none does)."""
        return self._by_province.get(province, "")

    async def call(
        self, region_id: str, op: Callable[[RegionAdapter, float], Awaitable[T]], *, budget: float | None = None
    ) -> T:
        """Run one adapter operation against a region within the call's time budget.

        ``budget`` replaces the caller's remaining time for work the hub does on its own (the outbox).
        """
        state = callstate.current()
        state.region, state.attempts = region_id, state.attempts + 1
        timeout = self.timeout() if budget is None else min(budget, self.config.call_timeout_seconds)
        if timeout <= 0:
            raise RegionTimeout(region_id, "no time left of the caller's deadline")
        try:
            async with asyncio.timeout(timeout):
                return await op(self.regions[region_id].adapter, timeout)
        except TimeoutError:
            raise RegionTimeout(region_id, f"no answer within {timeout:.3f}s") from None

    async def probe(self) -> None:
        """Ask every region's back-end whether it answers, all at once."""

        async def one(region: Region) -> None:
            try:
                await region.adapter.check_health(timeout=min(1.0, self.config.call_timeout_seconds))
                region.healthy = True
            except AdapterError as exc:
                if region.healthy or not region.probed:
                    log.warning("region %s failed its health probe: %s", region.config.region_id, exc)
                region.healthy = False
            region.probed = True

        await asyncio.gather(*(one(r) for r in self.regions.values()))

    async def _probe_forever(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(self.config.probe_interval_seconds)
