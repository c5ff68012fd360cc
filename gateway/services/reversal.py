"""撤销: reversing a settlement exactly once (DESIGN §4.5, §4.6), with a durable intent before the region is asked.

1. The ledger turns the settlement SETTLED → REVERSING, naming the reversal's message id (the intent); a retry of
   the same reversal finds it, another reversal request is refused — one reversal per settlement.
2. The region is asked to reverse. Its answer books REVERSED with the negative clearing entry in one transaction.
3. A refusal, or a call that provably never left, turns the settlement back to SETTLED and is answered.
4. Otherwise the outcome is unknown: the region is asked for the state of the settlement; REVERSED there is booked;
   anything else hands the reversal to the outbox, which delivers it until the region answers (the region
   deduplicates on the message id). The caller gets the settlement as REVERSAL_PENDING, and ``GetSettlement``
   shows REVERSED once the region has confirmed.

A REVERSING row whose call could not finish (the hub died in between) is resolved by the sweeper the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from adapters import domain
from adapters.errors import SettlementNotSettled, YikatongError
from gateway.domain import ReverseRequest
from gateway.ledger import LedgerConflict, LedgerStore, SettlementRecord, SettlementState
from gateway.metrics import Metrics
from gateway.services.audit import outcome_of
from gateway.services.call import Call
from gateway.services.idempotency import Idempotency
from gateway.services.outbox import Outbox
from gateway.services.settlement import Settlements


class Reversals:
    """Reversals of settlements (module docstring).

    Args:
        settlements: the settlements, whose owner alone may reverse one.
        ledger: where the intent and the booking live.
        idempotency: runs each reversal request once per request id.
        outbox: delivers a reversal whose outcome is unknown.
        metrics: settlement counters.
        clock: wall time; decides the clearing period the reversal is booked into.
    """

    def __init__(
        self,
        settlements: Settlements,
        ledger: LedgerStore,
        idempotency: Idempotency,
        outbox: Outbox,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settlements, self.federation = settlements, settlements.federation
        self.ledger, self.idempotency, self.outbox, self.metrics, self.clock = (
            ledger,
            idempotency,
            outbox,
            metrics,
            clock,
        )

    async def reverse(self, call: Call, request: ReverseRequest) -> SettlementRecord:
        """撤销 once (the module docstring says how)."""
        return await self.idempotency.run(
            call, "ReverseSettlement", request, lambda: self._reverse(call, request), SettlementRecord
        )

    async def _reverse(self, call: Call, request: ReverseRequest) -> SettlementRecord:
        record = await self.settlements.own(call, request.settlement_id)
        message_id = call.message_id(request.request_id)
        if record.state is not SettlementState.REVERSING or record.reversal_request_id != message_id:
            if record.state is not SettlementState.SETTLED:
                raise SettlementNotSettled(record.settlement_id, _shown(record.state))
            entry = self.settlements.entry(call, record, "OK", "REVERSAL_REQUESTED", objects={"reversal": message_id})
            try:
                record = await self.ledger.begin_reversal(
                    record.settlement_id, message_id, request.reason, self.clock(), entry
                )
            except LedgerConflict:  # another reversal won the race
                current = await self.settlements.own(call, record.settlement_id)
                raise SettlementNotSettled(record.settlement_id, _shown(current.state)) from None
        reversal = self._reversal(record)
        try:
            await self.federation.region(record.insured_region, call).reverse_settlement(reversal)
        except SettlementNotSettled:
            return await self._region_says_not_settled(call, record)
        except YikatongError as exc:
            if not exc.may_have_reached:  # a refusal, or provably never sent
                entry = self.settlements.entry(call, record, outcome_of(exc), exc.reason)
                await self.ledger.cancel_reversal(record.settlement_id, self.clock(), entry)
                raise
            return await self.resolve(call, record)
        except asyncio.CancelledError:
            await asyncio.shield(self._queue(call, record))
            raise
        return await self._booked(call, record)

    async def _region_says_not_settled(self, call: Call, record: SettlementRecord) -> SettlementRecord:
        """The region refused: either it reversed already (an earlier answer was lost) or it will not."""
        outcome = await self._outcome(call, record)
        if outcome is domain.OutcomeState.REVERSED:
            return await self._booked(call, record)
        entry = self.settlements.entry(call, record, "REFUSED", "SETTLEMENT_NOT_SETTLED")
        await self.ledger.cancel_reversal(record.settlement_id, self.clock(), entry)
        raise SettlementNotSettled(record.settlement_id, "not reversible at its region")

    async def resolve(self, call: Call, record: SettlementRecord) -> SettlementRecord:
        """A REVERSING settlement whose answer was lost: book it when the region has reversed it, else hand the
        reversal to the outbox. Returns the settlement as it now stands."""
        if await self._outcome(call, record) is domain.OutcomeState.REVERSED:
            return await self._booked(call, record)
        return await self._queue(call, record)

    def _reversal(self, record: SettlementRecord) -> domain.Reversal:
        ssn = self.settlements.sealer.open(record.sealed_ssn)
        return domain.Reversal(record.reversal_request_id, record.region_request_id, ssn, record.reversal_reason)

    async def _outcome(self, call: Call, record: SettlementRecord) -> domain.OutcomeState | None:
        with contextlib.suppress(YikatongError):
            region = self.federation.region(record.insured_region, call)
            return (await region.settlement_outcome(record.region_request_id)).state
        return None

    async def _booked(self, call: Call, record: SettlementRecord) -> SettlementRecord:
        fund = -record.split.fund_pay_fen if record.split else 0
        entry = self.settlements.entry(call, record, "OK", "REVERSED", {"fund_pay_fen": fund})
        try:
            reversed_ = await self.ledger.book_reversal(record.settlement_id, self.clock(), entry)
        except LedgerConflict:  # booked meanwhile (the outbox delivered it, or another path did)
            return _found(await self.ledger.settlement(record.settlement_id))
        treatment_region = self.federation.region_of_province(record.treatment_area[:2]) or "unfederated"
        self.metrics.settlements.labels(record.insured_region, treatment_region, "reversed").inc()
        return reversed_

    async def _queue(self, call: Call, record: SettlementRecord) -> SettlementRecord:
        entry = self.settlements.entry(call, record, "OK", "REVERSAL_PENDING")
        try:
            queued = await self.ledger.queue_reversal(
                record.settlement_id, self.outbox.payload(self._reversal(record)), self.clock(), entry
            )
        except LedgerConflict:  # no longer REVERSING: settled either way meanwhile
            return _found(await self.ledger.settlement(record.settlement_id))
        self.outbox.wake()
        return queued


def _shown(state: SettlementState) -> str:
    """A state as callers see it (``REVERSING`` is ``REVERSAL_PENDING`` on the API)."""
    return "REVERSAL_PENDING" if state is SettlementState.REVERSING else state.value


def _found(record: SettlementRecord | None) -> SettlementRecord:
    if record is None:
        raise LedgerConflict("the settlement disappeared")
    return record
