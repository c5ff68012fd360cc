"""The federated regions: routing by area code, the adapters, resilience per region and health probing.

Routing (DESIGN §4.2): an area code's first two digits name the province; each province belongs to at most one
region. Every call to a region passes the region's :class:`~gateway.resilience.RegionGuard` (bulkhead, circuit
breaker, deadline, retries where :data:`OPERATIONS` says they are safe); each attempt gets the caller's
remaining time less a margin, capped per region, and an adapter that overruns it is cut off as a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from adapters.errors import AdapterError, RegionNotFederated
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.registry import AdapterRegistry
from gateway import callstate
from gateway.config import HubConfig
from gateway.metrics import Metrics
from gateway.resilience import RegionGuard, RetryPolicy
from regions.config import RegionConfig

T = TypeVar("T")
log = logging.getLogger("yikatong.federation")


# How each adapter operation may be retried (DESIGN §6). Every write carries the caller's request id as the
# region's message id and the regions deduplicate on it, so resending a write is safe — except a settlement,
# whose unknown outcome is resolved by asking the region for it (DESIGN §4.5), not by resending.
OPERATIONS: dict[str, RetryPolicy] = {
    "get_card": RetryPolicy.SAFE,
    "knows_holder": RetryPolicy.SAFE,
    "get_application": RetryPolicy.SAFE,
    "apply_card": RetryPolicy.SAFE,
    "change_card": RetryPolicy.SAFE,
    "replace_card": RetryPolicy.SAFE,
    "file_remote_care": RetryPolicy.SAFE,
    "pre_settle": RetryPolicy.SAFE,
    "settle": RetryPolicy.NOT_REACHED,
    "settlement_outcome": RetryPolicy.SAFE,
    "correct_settlement": RetryPolicy.SAFE,
    "reverse_settlement": RetryPolicy.SAFE,
    "send_stand_in_advice": RetryPolicy.SAFE,
    "check_health": RetryPolicy.NEVER,
}


@dataclass
class Region:
    """A configured region with its adapter, its guard and what probing last found."""

    config: RegionConfig
    adapter: RegionAdapter
    guard: RegionGuard
    healthy: bool = False
    probed: bool = False


class Federation:
    """The regions the hub routes to."""

    def __init__(self, config: HubConfig, registry: AdapterRegistry, metrics: Metrics) -> None:
        self.config, self.metrics = config, metrics
        self.regions: dict[str, Region] = {}
        self._by_province: dict[str, str] = {}
        for rc in config.regions:
            cls = registry.get(rc.adapter)
            adapter = cls(AdapterSettings(rc.region_id, rc.endpoint, dict(rc.options)))
            cap = rc.resilience.call_timeout_seconds or config.call_timeout_seconds
            guard = RegionGuard(rc.region_id, replace(rc.resilience, call_timeout_seconds=cap), metrics)
            self.regions[rc.region_id] = Region(rc, adapter, guard)
            self._by_province.update(dict.fromkeys(rc.provinces, rc.region_id))
        self._probe_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the adapters and probe every region once, so health is known before the first call."""
        for region in self.regions.values():
            await region.adapter.start()
        await self.probe()
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

    def note_venue(self, area: str) -> None:
        """Record the venue's region on the call (for the per-region-pair metrics)."""
        callstate.current().venue_region = self.region_of_province(area[:2]) or "unfederated"

    def region_of_province(self, province: str) -> str:
        """The region serving a two-digit province code ("" when none does)."""
        return self._by_province.get(province, "")

    def time_left(self) -> float:
        """Seconds the call may still spend at regions: the caller's remaining time less the margin."""
        return callstate.current().remaining() - self.config.deadline_margin_seconds

    async def call(
        self,
        region_id: str,
        operation: str,
        op: Callable[[RegionAdapter, float], Awaitable[T]],
        *,
        budget: float | None = None,
    ) -> T:
        """Run one adapter operation against a region through its guard, within the call's time budget.

        ``budget`` replaces the caller's remaining time for work the hub does on its own (the outbox).
        """
        region = self.regions[region_id]
        state = callstate.current()
        state.region = region_id
        until = None if budget is None else time.monotonic() + budget

        def time_left() -> float:
            return self.time_left() if until is None else until - time.monotonic()

        async def attempt(timeout: float) -> T:
            state.attempts += 1
            return await op(region.adapter, timeout)

        return await region.guard.run(operation, OPERATIONS[operation], attempt, time_left)

    async def probe(self) -> None:
        """Ask every region's back-end whether it answers, all at once, through its guard.

        While a region's circuit is open the probe is refused like any call; once the cool-down is over the
        probe is the half-open trial that closes the circuit when the region answers again.
        """

        async def one(region: Region) -> None:
            budget = min(1.0, self.config.call_timeout_seconds)
            try:
                await self.call(
                    region.config.region_id, "check_health", lambda a, t: a.check_health(timeout=t), budget=budget
                )
                region.healthy = True
            except AdapterError as exc:
                if region.healthy or not region.probed:
                    log.warning("region %s failed its health probe: %s", region.config.region_id, exc)
                region.healthy = False
            region.probed = True
            self.metrics.region_up.labels(region.config.region_id).set(1 if region.healthy else 0)

        await asyncio.gather(*(one(r) for r in self.regions.values()))

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.probe_interval_seconds)
            await self.probe()
