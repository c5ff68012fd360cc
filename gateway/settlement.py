"""Cross-province medical settlement at the hub (DESIGN §4.5, §6): route, settle once, book, or void.

A settlement goes to the insured place's region. Before the region is asked, the ledger records it as
PENDING; then exactly one of these happens:

* the region settles and the split balances → SETTLED, booked for clearing in the same transaction;
* the region refuses, or provably never got the request → the PENDING row is dropped, the refusal answered;
* the outcome is unknown (timeout, unreadable answer, cancelled call) → the region is asked for the outcome
  of the request id; SETTLED there → booked as above; anything else → CORRECTION_PENDING with a correction
  (冲正) queued in the durable outbox in the same transaction, and the caller told the bill is not settled;
* the split breaks an invariant → refused, corrected through the outbox, never booked.

A PENDING row found at start-up (the hub died mid-call) is voided the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from itertools import product

from adapters import domain
from adapters.errors import (
    AdapterError,
    Refusal,
    RegionSplitInvalid,
    RequestInProgress,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
    SettlementOutcomeUnknown,
)
from gateway.ledger import LedgerConflict, LedgerStore, SettlementRecord, SettlementState
from gateway.lookup import CardLookup
from gateway.metrics import Metrics
from gateway.outbox import Outbox

OUTCOMES = ("settled", "refused", "outcome_unknown", "split_invalid", "reversed")


class Settlements:
    """Settlement orchestration over the federation and the ledger.

    Args:
        lookup: card lookup at the issuing region, and the insured region of a card.
        ledger: where settlements and their clearing entries live.
        outbox: delivers corrections until the region acknowledges them.
        metrics: settlement counters.
        clock: wall time; decides the clearing period and booking day.
    """

    def __init__(
        self,
        lookup: CardLookup,
        ledger: LedgerStore,
        outbox: Outbox,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lookup, self.federation = lookup, lookup.federation
        self.ledger, self.outbox, self.metrics, self.clock = ledger, outbox, metrics, clock
        for insured, treatment, outcome in product(self.federation.regions, self.federation.regions, OUTCOMES):
            metrics.settlements.labels(insured, treatment, outcome)  # at 0, so the first event shows in rates

    async def file(self, request: domain.FileRemoteCare) -> tuple[domain.Filing, domain.Insurance, str]:
        """备案 at the insured place's region; returns the filing, the insurance and the region id."""
        insurance, region = await self.lookup.insurance(request.credential)
        filing = await self.federation.call(
            region, "file_remote_care", lambda a, t: a.file_remote_care(request, timeout=t)
        )
        return filing, insurance, region

    async def pre_settle(self, bill: domain.Bill) -> tuple[domain.Split, domain.Insurance, str]:
        """The split the insured place gives the bill now; nothing is booked."""
        self.federation.note_venue(bill.treatment_area)
        self.federation.region_for_area(bill.treatment_area)
        insurance, region = await self.lookup.insurance(bill.credential)
        bill = replace(bill, insured_area=insurance.insured_area)
        split = await self.federation.call(region, "pre_settle", lambda a, t: a.pre_settle(bill, timeout=t))
        if broken := _violations(bill, split):
            raise RegionSplitInvalid(region, broken)
        return split, insurance, region

    async def settle(self, bill: domain.Bill) -> SettlementRecord:
        """Settle a bill once per request id (the module docstring says how)."""
        existing = await self.ledger.settlement_by_request(bill.request_id)
        if existing is not None:
            return _settled_before(existing)
        self.federation.note_venue(bill.treatment_area)
        treatment_region = self.federation.region_for_area(bill.treatment_area)
        insurance, region = await self.lookup.insurance(bill.credential)
        bill = replace(bill, insured_area=insurance.insured_area)
        record = SettlementRecord(
            settlement_id=f"stl-{uuid.uuid4().hex}",
            request_id=bill.request_id,
            state=SettlementState.PENDING,
            social_security_number=bill.credential.social_security_number,
            insured_area=bill.insured_area,
            treatment_area=bill.treatment_area,
            insured_region=region,
            institution_id=bill.institution_id,
            visit_type=bill.visit_type,
            hospital_level=bill.hospital_level,
            created_at=self.clock(),
        )
        await self.ledger.begin_settlement(record)
        labels = (region, treatment_region)
        try:
            answer = await self.federation.call(region, "settle", lambda a, t: a.settle(bill, timeout=t))
        except (Refusal, AdapterError) as exc:
            if isinstance(exc, Refusal) or not exc.may_have_reached:
                await self.ledger.drop_pending(record.settlement_id)
                self.metrics.settlements.labels(*labels, "refused").inc()
                raise
        except asyncio.CancelledError:
            await asyncio.shield(self._void(record, "the caller cancelled before the region answered", labels))
            raise
        else:
            return await self._book(record, bill, answer, labels)
        return await self._resolve(record, bill, labels)

    async def _resolve(self, record: SettlementRecord, bill: domain.Bill, labels: tuple[str, str]) -> SettlementRecord:
        """Ask the region what became of the request id; book it or void it."""
        try:
            outcome = await self.federation.call(
                record.insured_region,
                "settlement_outcome",
                lambda a, t: a.settlement_outcome(record.request_id, timeout=t),
            )
        except (AdapterError, Refusal):
            outcome = domain.SettlementOutcome(domain.OutcomeState.NOT_FOUND)
        except asyncio.CancelledError:
            await asyncio.shield(self._void(record, "the caller cancelled while the outcome was asked", labels))
            raise
        if outcome.state is domain.OutcomeState.SETTLED and outcome.settlement is not None:
            return await self._book(record, bill, outcome.settlement, labels)
        await self._void(record, f"outcome unknown (region said {outcome.state.value})", labels)
        raise SettlementOutcomeUnknown(record.settlement_id, record.insured_region)

    async def _book(
        self, record: SettlementRecord, bill: domain.Bill, answer: domain.RegionSettlement, labels: tuple[str, str]
    ) -> SettlementRecord:
        if broken := _violations(bill, answer.split):
            await self._void(record, "split breaks " + "; ".join(broken), labels, outcome="split_invalid")
            raise RegionSplitInvalid(record.insured_region, broken)
        booked = await self.ledger.book_settlement(
            record.settlement_id, answer.region_settlement_id, answer.split, self.clock()
        )
        self.metrics.settlements.labels(*labels, "settled").inc()
        self.metrics.settlement_fund_pay.labels(*labels).inc(answer.split.fund_pay_fen)
        return booked

    async def _void(
        self, record: SettlementRecord, reason: str, labels: tuple[str, str], outcome: str = "outcome_unknown"
    ) -> None:
        await self.ledger.void_settlement(record.settlement_id, reason, self.clock())
        self.metrics.settlements.labels(*labels, outcome).inc()
        self.outbox.wake()

    async def reverse(self, request_id: str, settlement_id: str, reason: str) -> SettlementRecord:
        """撤销 once: at the insured region, then booked negative into the period open now."""
        record = await self.get(settlement_id)
        if record.state is not SettlementState.SETTLED:
            raise SettlementNotSettled(settlement_id, record.state.value)
        reversal = domain.Reversal(request_id, record.request_id, record.social_security_number, reason)
        try:
            await self.federation.call(
                record.insured_region, "reverse_settlement", lambda a, t: a.reverse_settlement(reversal, timeout=t)
            )
        except SettlementNotSettled:
            await self._catch_up_reversal(record)
            raise SettlementNotSettled(settlement_id, SettlementState.REVERSED.value) from None
        try:
            reversed_ = await self.ledger.book_reversal(settlement_id, self.clock())
        except LedgerConflict:
            raise SettlementNotSettled(settlement_id, (await self.get(settlement_id)).state.value) from None
        treatment_region = self.federation.region_of_province(record.treatment_area[:2])
        self.metrics.settlements.labels(record.insured_region, treatment_region, "reversed").inc()
        return reversed_

    async def _catch_up_reversal(self, record: SettlementRecord) -> None:
        """The region already reversed it (an earlier reversal whose answer was lost): book that reversal."""
        outcome = await self.federation.call(
            record.insured_region, "settlement_outcome", lambda a, t: a.settlement_outcome(record.request_id, timeout=t)
        )
        if outcome.state is domain.OutcomeState.REVERSED:
            with contextlib.suppress(LedgerConflict):  # booked meanwhile by the reversal that won
                await self.ledger.book_reversal(record.settlement_id, self.clock())

    async def get(self, settlement_id: str) -> SettlementRecord:
        record = await self.ledger.settlement(settlement_id)
        if record is None:
            raise SettlementNotFound(f"no settlement {settlement_id}", metadata={"settlement_id": settlement_id})
        return record


def _violations(bill: domain.Bill, split: domain.Split) -> list[str]:
    broken = split.violations()
    if split.total_fen != sum(line.amount_fen for line in bill.lines):
        broken.append("total != the bill's line amounts")
    return broken


def _settled_before(record: SettlementRecord) -> SettlementRecord:
    """What a request id that already has a settlement row answers (a retry after a crash or a void)."""
    if record.state in (SettlementState.SETTLED, SettlementState.REVERSED):
        return record
    if record.state is SettlementState.PENDING:
        raise RequestInProgress(record.request_id)
    raise SettlementCorrected(
        f"settlement {record.settlement_id} was voided ({record.void_reason}); settle again under a new request_id",
        metadata={"settlement_id": record.settlement_id, "state": record.state.value},
    )
