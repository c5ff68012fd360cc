"""The federated regions: routing by area code, the adapters, resilience per region and health probing.

Routing (DESIGN §4.2): an area code's first two digits name the province; each province belongs to at most one
region. A region is called through :meth:`Federation.region`, which gives the
:class:`~adapters.interface.RegionAdapter` methods themselves (without ``timeout``), each passing the region's
:class:`~gateway.services.resilience.RegionGuard` under the retry policy the interface declares for it; each
attempt gets the call's remaining time less a margin, capped per region, and an adapter that overruns it is cut
off as a timeout. The region and the attempts are written on the :class:`~gateway.services.call.Call`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from adapters import domain
from adapters.errors import AdapterError
from adapters.interface import AdapterSettings, RegionAdapter, retry_policy
from adapters.registry import AdapterRegistry
from gateway.config import HubConfig
from gateway.errors import RegionNotFederated
from gateway.metrics import Metrics
from gateway.services.call import Call
from gateway.services.resilience import RegionGuard
from regions.config import RegionConfig

T = TypeVar("T")
log = logging.getLogger("yikatong.federation")


@dataclass
class Region:
    """A configured region with its adapter, its guard and what probing last found."""

    config: RegionConfig
    adapter: RegionAdapter
    guard: RegionGuard
    healthy: bool = False
    probed: bool = False


class GuardedRegion:
    """One region's adapter methods for one call, each through the region's guard within the call's time.

    Args:
        region: the region.
        call: the call being served; its deadline bounds every attempt, and the region and attempts are
            recorded on it.
        margin_seconds: kept back from the call's remaining time, so the hub can still answer in time.
    """

    def __init__(self, region: Region, call: Call, margin_seconds: float) -> None:
        self._region, self._call, self._margin = region, call, margin_seconds

    def _time_left(self) -> float:
        return self._call.remaining() - self._margin

    async def _run(self, method: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``method(*args, timeout=...)`` of the adapter, under the guard and its declared retry policy."""
        call, name = self._call, method.__name__
        call.region = self._region.config.region_id

        async def attempt(timeout: float) -> T:
            call.attempts += 1
            return await method(*args, timeout=timeout)

        return await self._region.guard.run(name, retry_policy(name), attempt, self._time_left)

    async def get_card(self, credential: domain.CardCredential) -> domain.CardRecord:
        return await self._run(self._region.adapter.get_card, credential)

    async def knows_holder(self, social_security_number: str) -> bool:
        return await self._run(self._region.adapter.knows_holder, social_security_number)

    async def apply_card(self, request: domain.ApplyCard) -> domain.Application:
        return await self._run(self._region.adapter.apply_card, request)

    async def change_card(self, request: domain.ChangeCard) -> domain.Card:
        return await self._run(self._region.adapter.change_card, request)

    async def replace_card(self, request: domain.ReplaceCard) -> domain.Application:
        return await self._run(self._region.adapter.replace_card, request)

    async def get_application(self, social_security_number: str, holder_name: str) -> domain.Application:
        return await self._run(self._region.adapter.get_application, social_security_number, holder_name)

    async def file_remote_care(self, request: domain.FileRemoteCare) -> domain.Filing:
        return await self._run(self._region.adapter.file_remote_care, request)

    async def pre_settle(self, bill: domain.Bill) -> domain.Split:
        return await self._run(self._region.adapter.pre_settle, bill)

    async def settle(self, bill: domain.Bill) -> domain.RegionSettlement:
        return await self._run(self._region.adapter.settle, bill)

    async def settlement_outcome(self, request_id: str) -> domain.SettlementOutcome:
        return await self._run(self._region.adapter.settlement_outcome, request_id)

    async def correct_settlement(self, request_id: str) -> None:
        await self._run(self._region.adapter.correct_settlement, request_id)

    async def reverse_settlement(self, request: domain.Reversal) -> None:
        await self._run(self._region.adapter.reverse_settlement, request)

    async def send_stand_in_advice(self, advice: domain.StandInAdvice) -> None:
        await self._run(self._region.adapter.send_stand_in_advice, advice)

    async def check_health(self) -> None:
        await self._run(self._region.adapter.check_health)


@dataclass(frozen=True)
class RegionView:
    """A region as ``ListRegions`` shows it."""

    region_id: str
    name: str
    provinces: tuple[str, ...]
    adapter: str
    healthy: bool
    circuit_state: str


class Federation:
    """The regions the hub routes to.

    Args:
        config: the hub's configuration (its regions, deadlines and probe interval).
        registry: the installed adapter classes.
        metrics: region metrics.
    """

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

    def region(self, region_id: str, call: Call) -> GuardedRegion:
        """The region's adapter methods for ``call``, each through the region's guard."""
        return GuardedRegion(self.regions[region_id], call, self.config.deadline_margin_seconds)

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
        """The region serving an area code's province.

        Raises:
            RegionNotFederated: no region serves it.
        """
        region = self._by_province.get(area[:2])
        if region is None:
            raise RegionNotFederated(area[:2])
        return region

    def note_venue(self, call: Call, area: str) -> None:
        """Record the venue's region on the call (for the per-region-pair metrics)."""
        call.venue_region = self.region_of_province(area[:2]) or "unfederated"

    def region_of_province(self, province: str) -> str:
        """The region serving a two-digit province code ("" when none does)."""
        return self._by_province.get(province, "")

    def views(self) -> list[RegionView]:
        """Every region with its health and circuit state."""
        return [
            RegionView(
                r.config.region_id,
                r.config.name,
                tuple(r.config.provinces),
                r.config.adapter,
                r.healthy,
                r.guard.breaker.state,
            )
            for r in self.regions.values()
        ]

    async def probe(self) -> None:
        """Ask every region's back-end whether it answers, all at once, through its guard.

        While a region's circuit is open the probe is refused like any call; once the cool-down is over the
        probe is the half-open trial that closes the circuit when the region answers again.
        """

        async def one(region: Region) -> None:
            budget = min(1.0, self.config.call_timeout_seconds)
            region_id = region.config.region_id
            try:
                await self.region(region_id, Call.within(budget + self.config.deadline_margin_seconds)).check_health()
                region.healthy = True
            except AdapterError as exc:
                if region.healthy or not region.probed:
                    log.warning("region %s failed its health probe: %s", region_id, exc)
                region.healthy = False
            region.probed = True
            self.metrics.region_up.labels(region_id).set(1 if region.healthy else 0)

        await asyncio.gather(*(one(r) for r in self.regions.values()))

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.probe_interval_seconds)
            await self.probe()
