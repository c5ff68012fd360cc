"""The durable outbox: messages the hub owes regions, delivered until acknowledged (DESIGN §4.5, §4.7).

Three kinds: a correction (冲正) of a settlement whose outcome was unknown, a reversal (撤销) the region has not
confirmed yet, and a stand-in advice of a resident service granted while the card's region was unreachable.

Items live in the ledger, written in the same transaction as the change that owes them, so a crash never loses
one. A worker delivers due items and, on failure, retries with jittered exponential backoff; nothing is ever
dropped: an item stays until its region acknowledges it. Delivery is fair and prioritised:

* every region gets its own share of each round (at most ``per_region`` items), delivered in parallel with the
  other regions', so one region's backlog or trouble never delays another's;
* within a region, corrections and reversals go before stand-in advices, oldest first;
* a region that cannot be reached is backed off as a whole (its later items wait for the next try); a region that
  refuses one item (it cannot read it) does not hold back its others.

Depth and oldest age are gauges per region and kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from itertools import groupby

from adapters.domain import OutcomeState, Reversal, StandInAdvice
from adapters.errors import InvalidArgument, SettlementNotSettled, YikatongError
from gateway import canonical
from gateway.ledger import ADVICE, CORRECTION, REVERSAL, LedgerStore, OutboxItem
from gateway.masking import mask_text
from gateway.metrics import Metrics
from gateway.personal import Sealer
from gateway.services.audit import Auditor
from gateway.services.call import Call
from gateway.services.federation import Federation, GuardedRegion

log = logging.getLogger("yikatong.outbox")
KINDS = (CORRECTION, REVERSAL, ADVICE)


class Outbox:
    """Delivers outbox items in the background.

    Args:
        ledger: where the items live.
        federation: the regions to deliver to.
        metrics: outbox depth and age gauges, delivery counters.
        sealer: seals payloads (they name cards and people).
        auditor: records each delivery in the audit chain.
        clock: wall time.
        poll_seconds: how often due items are looked for when nothing wakes the worker.
        base_delay_seconds: first retry delay; doubles per attempt up to ``max_delay_seconds``, with jitter.
        call_seconds: time each delivery call may take.
        per_region: most items of one region tried in one round.
    """

    def __init__(
        self,
        ledger: LedgerStore,
        federation: Federation,
        metrics: Metrics,
        sealer: Sealer,
        auditor: Auditor,
        clock: Callable[[], float] = time.time,
        *,
        poll_seconds: float = 1.0,
        base_delay_seconds: float = 0.5,
        max_delay_seconds: float = 60.0,
        call_seconds: float = 2.0,
        per_region: int = 50,
    ) -> None:
        self.ledger, self.federation, self.metrics, self.clock = ledger, federation, metrics, clock
        self.sealer, self.auditor = sealer, auditor
        self.poll_seconds, self.call_seconds, self.per_region = poll_seconds, call_seconds, per_region
        self.base_delay_seconds, self.max_delay_seconds = base_delay_seconds, max_delay_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()
        self._region_failures: dict[str, int] = {}
        self._region_retry_at: dict[str, float] = {}
        self._gauged: set[tuple[str, str]] = {(r, k) for r in federation.regions for k in KINDS}

    def payload(self, value: Reversal | StandInAdvice) -> str:
        """An item's payload as the outbox keeps it: the canonical JSON, sealed."""
        return self.sealer.seal(canonical.encode(value).decode())

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
        """Try the due items of every region not backed off, once; returns how many were acknowledged."""
        now = self.clock()
        backed_off = {region for region, at in self._region_retry_at.items() if at > now}  # not even claimed
        due = await self.ledger.claim_outbox(now, self.per_region, backed_off)
        by_region = [list(items) for _, items in groupby(due, lambda i: i.region)]
        delivered = sum(await asyncio.gather(*(self._deliver_in_order(items) for items in by_region)))
        await self.refresh_gauges()
        return delivered

    async def deliver_now(self, items: Sequence[OutboxItem]) -> bool:
        """Deliver these items now, in order, stopping at the first failure; True when every one was."""
        for item in items:
            if await self._deliver(item) is not None:
                return False
        return True

    async def refresh_gauges(self) -> None:
        backlog = {
            (region, kind): (count, oldest) for region, kind, count, oldest in await self.ledger.outbox_backlog()
        }
        now = self.clock()
        for labels in self._gauged | backlog.keys():
            count, oldest = backlog.get(labels, (0, now))
            self.metrics.outbox_depth.labels(*labels).set(count)
            self.metrics.outbox_oldest_age.labels(*labels).set(max(0.0, now - oldest))
        self._gauged |= backlog.keys()

    async def _deliver_in_order(self, items: list[OutboxItem]) -> int:
        delivered, region = 0, items[0].region
        for n, item in enumerate(items):
            failure = await self._deliver(item)
            if failure is None:
                delivered += 1
                self._region_failures.pop(region, None)
            elif not failure.answered:  # the region is failing or was not asked: back it off as a whole
                failures = self._region_failures[region] = self._region_failures.get(region, 0) + 1
                self._region_retry_at[region] = self.clock() + self._delay(failures - 1)
                if rest := items[n + 1 :]:  # not tried: free for the round after the backoff, not the lease
                    await self.ledger.outbox_unclaim(rest)
                break
            # else the region refused this one item: it waits for its own retry, the others go on
        return delivered

    def _delay(self, attempts: int) -> float:
        delay = min(self.max_delay_seconds, self.base_delay_seconds * float(2**attempts))
        return delay * self._rng.uniform(0.5, 1.0)

    async def _deliver(self, item: OutboxItem) -> YikatongError | None:
        """Deliver one item; the error when it was not acknowledged."""
        region = self.federation.region(item.region, Call.within(self.call_seconds))
        try:
            if item.kind == CORRECTION:
                await region.correct_settlement(item.key)
            elif item.kind == REVERSAL:
                await _reverse(region, canonical.decode(Reversal, self.sealer.open(item.payload)))
            elif item.kind == ADVICE:
                await region.send_stand_in_advice(canonical.decode(StandInAdvice, self.sealer.open(item.payload)))
            else:
                raise InvalidArgument("outbox.kind", f"unknown kind {item.kind}")
        except YikatongError as exc:
            await self.ledger.outbox_failed(item, mask_text(str(exc)), self.clock() + self._delay(item.attempts))
            self.metrics.outbox_deliveries.labels(item.kind, item.region, "failed").inc()
            if item.attempts == 0:
                log.warning("outbox %s to %s not delivered yet: %s", item.kind, item.region, mask_text(str(exc)))
            return exc
        entry = self.auditor.hub_entry(
            f"Outbox/{item.kind}", item.key, "OK", "DELIVERED", objects={"region": item.region}
        )
        await self.ledger.outbox_delivered(item, self.clock(), entry)
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


async def _reverse(region: GuardedRegion, reversal: Reversal) -> None:
    """Deliver a reversal; one the region already carried out (an earlier answer lost) counts as delivered."""
    try:
        await region.reverse_settlement(reversal)
    except SettlementNotSettled:
        if (await region.settlement_outcome(reversal.settlement_request_id)).state is not OutcomeState.REVERSED:
            raise
