"""The durable outbox: messages the hub owes regions, delivered until acknowledged (DESIGN §4.5, §4.7).

Two kinds: a correction (冲正) of a settlement whose outcome was unknown, and a stand-in advice of a resident
service granted while the card's region was unreachable.

Items live in the ledger, written in the same transaction as the change that owes them, so a crash never loses
one. A worker delivers due items — regions in parallel, each region's items in order — and on failure retries
with jittered exponential backoff. Nothing is ever dropped: an item stays until its region acknowledges it.
A region that cannot be reached holds back its later items until the next round; a region that refuses one item
(it cannot read it) does not hold back the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from itertools import groupby

from adapters.domain import StandInAdvice
from adapters.errors import InvalidArgument, YikatongError
from gateway import canonical
from gateway.ledger import ADVICE, CORRECTION, LedgerStore, OutboxItem
from gateway.metrics import Metrics
from gateway.services.call import Call
from gateway.services.federation import Federation

log = logging.getLogger("yikatong.outbox")


def encode_advice(advice: StandInAdvice) -> str:
    """An advice as the outbox keeps it (canonical JSON)."""
    return canonical.encode(advice).decode()


class Outbox:
    """Delivers outbox items in the background.

    Args:
        ledger: where the items live.
        federation: the regions to deliver to.
        metrics: outbox depth and age gauges, delivery counters.
        clock: wall time.
        poll_seconds: how often due items are looked for when nothing wakes the worker.
        base_delay_seconds: first retry delay; doubles per attempt up to ``max_delay_seconds``, with jitter.
        call_seconds: time each delivery call may take.
    """

    def __init__(
        self,
        ledger: LedgerStore,
        federation: Federation,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        *,
        poll_seconds: float = 1.0,
        base_delay_seconds: float = 0.5,
        max_delay_seconds: float = 60.0,
        call_seconds: float = 2.0,
        batch: int = 100,
    ) -> None:
        self.ledger, self.federation, self.metrics, self.clock = ledger, federation, metrics, clock
        self.poll_seconds, self.call_seconds, self.batch = poll_seconds, call_seconds, batch
        self.base_delay_seconds, self.max_delay_seconds = base_delay_seconds, max_delay_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def wake(self) -> None:
        """Look for due items now (something was just queued)."""
        self._wake.set()

    async def close(self) -> None:
        """Stop delivering; undelivered items stay in the ledger for the next start."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def deliver_due(self) -> int:
        """Try every due item once; returns how many were acknowledged."""
        due = await self.ledger.outbox_due(self.clock(), self.batch)
        by_region = [list(items) for _, items in groupby(sorted(due, key=lambda i: i.region), lambda i: i.region)]
        delivered = sum(await asyncio.gather(*(self._deliver_in_order(items) for items in by_region)))
        await self.refresh_gauges()
        return delivered

    async def refresh_gauges(self) -> None:
        depth, oldest = await self.ledger.outbox_backlog()
        self.metrics.outbox_depth.set(depth)
        self.metrics.outbox_oldest_age.set(0 if oldest is None else max(0.0, self.clock() - oldest))

    async def _deliver_in_order(self, items: list[OutboxItem]) -> int:
        delivered = 0
        for item in items:
            failure = await self._deliver(item)
            if failure is None:
                delivered += 1
            elif not failure.answered:
                break  # the region is failing or was not asked: leave its later items for the next round
            # else the region refused this one item: it waits for its own retry, the others go on
        return delivered

    async def _deliver(self, item: OutboxItem) -> YikatongError | None:
        """Deliver one item; the error when it was not acknowledged."""
        region = self.federation.region(item.region, Call.within(self.call_seconds))
        try:
            if item.kind == CORRECTION:
                await region.correct_settlement(item.key)
            elif item.kind == ADVICE:
                await region.send_stand_in_advice(canonical.decode(StandInAdvice, item.payload))
            else:
                raise InvalidArgument("outbox.kind", f"unknown kind {item.kind}")
        except YikatongError as exc:
            delay = min(self.max_delay_seconds, self.base_delay_seconds * 2**item.attempts)
            await self.ledger.outbox_failed(item, str(exc), self.clock() + delay * self._rng.uniform(0.5, 1.0))
            self.metrics.outbox_deliveries.labels(item.kind, item.region, "failed").inc()
            if item.attempts == 0:
                log.warning("outbox %s to %s not delivered yet: %s", item.kind, item.region, exc)
            return exc
        await self.ledger.outbox_delivered(item, self.clock())
        self.metrics.outbox_deliveries.labels(item.kind, item.region, "delivered").inc()
        return None

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:  # the worker must outlive a bad round (e.g. a locked database)
                log.exception("outbox round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
