"""The sweeper: money movements whose call could not finish are resolved while the hub runs, and old records go.

A PENDING settlement or a REVERSING one (whose reversal is not in the outbox yet) unchanged for longer than the
lease belongs to a call that will not finish it — the hub died mid-call, or the ledger failed at the wrong
moment. The sweeper asks the region for its outcome and books it, or voids it with a correction, or hands the
reversal to the outbox (``Settlements.resolve``, ``Reversals.resolve``). At start every such row is swept at
once, whatever its age (no call of an earlier process is still running). Every ``prune_seconds`` it forgets
finished idempotency records and delivered outbox items past their retention; settlements and closed periods
are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

from adapters.errors import YikatongError
from gateway.ledger import LedgerStore, SettlementRecord, SettlementState
from gateway.services.call import Call
from gateway.services.reversal import Reversals
from gateway.services.settlement import Settlements

log = logging.getLogger("yikatong.sweeper")
DAY = 86400.0


class Sweeper:
    """Resolves unfinished money movements and prunes old records (module docstring).

    Args:
        settlements: resolves PENDING settlements.
        reversals: resolves REVERSING settlements.
        ledger: where the rows are.
        clock: wall time.
        lease_seconds: how long a row may stay unresolved before the sweeper takes it (longer than any call).
        sweep_seconds: how often it looks.
        idempotency_days: how long finished idempotency records (answers and refusals) are kept.
        outbox_days: how long delivered outbox items are kept.
        call_seconds: time the sweeper gives the region for one row.
    """

    def __init__(
        self,
        settlements: Settlements,
        reversals: Reversals,
        ledger: LedgerStore,
        clock: Callable[[], float] = time.time,
        *,
        lease_seconds: float = 60.0,
        sweep_seconds: float = 5.0,
        idempotency_days: float = 30.0,
        outbox_days: float = 30.0,
        call_seconds: float = 3.0,
        prune_seconds: float = 3600.0,
    ) -> None:
        self.settlements, self.reversals, self.ledger, self.clock = settlements, reversals, ledger, clock
        self.lease_seconds, self.sweep_seconds, self.call_seconds = lease_seconds, sweep_seconds, call_seconds
        self.idempotency_days, self.outbox_days, self.prune_seconds = idempotency_days, outbox_days, prune_seconds
        self._task: asyncio.Task[None] | None = None
        self._pruned_at = -math.inf

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def sweep(self, *, everything: bool = False, batch: int = 100) -> int:
        """Resolve the unresolved rows past their lease (``everything``: whatever their age), in batches while
        they get resolved; how many were."""
        before = math.inf if everything else self.clock() - self.lease_seconds
        resolved = 0
        while rows := await self.ledger.claim_unresolved(before, batch):
            done = sum([await self._resolve(record) for record in rows])
            resolved += done
            if len(rows) < batch or not done:
                break
        return resolved

    async def _resolve(self, record: SettlementRecord) -> int:
        call = Call.within(self.call_seconds)
        try:
            if record.state is SettlementState.PENDING:
                now = await self.settlements.resolve(call, record)
            else:
                now = await self.reversals.resolve(call, record)
        except YikatongError as exc:  # e.g. the ledger is unavailable, or the split was broken (voided)
            log.warning("settlement %s not resolved this round: %s", record.settlement_id, exc)
            return 0
        log.warning("settlement %s left %s by an unfinished call is now %s", record.settlement_id,
                    record.state.value, now.state.value)  # fmt: skip
        return 1

    async def prune(self) -> tuple[int, int]:
        """Forget what is past its retention: (idempotency records, outbox items)."""
        now = self.clock()
        return await self.ledger.prune(now - self.idempotency_days * DAY, now - self.outbox_days * DAY)

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
                if time.monotonic() - self._pruned_at > self.prune_seconds:
                    self._pruned_at = time.monotonic()
                    records, items = await self.prune()
                    if records or items:
                        log.info("pruned %d idempotency records and %d delivered outbox items", records, items)
            except Exception:  # the sweeper must outlive a bad round (e.g. a locked database)
                log.exception("sweep failed")
            await asyncio.sleep(self.sweep_seconds)
