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

Settlements belong to the participant that settled them (DESIGN §10): a request id is unique per participant,
the region knows it by a message id derived from both (``Call.message_id``), and only its own participant may see
or reverse it — another hospital's settlement answers ``NOT_FOUND``, as if it did not exist; the clearing role may
look up any. A hospital settles only at its own institutions in its own areas.
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
    RegionSplitInvalid,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
    YikatongError,
)
from gateway.domain import CardWrite, FiledCare, PresentedCard, PreSettled, ReverseRequest
from gateway.errors import CallerOutOfScope, RequestInProgress, SettlementOutcomeUnknown
from gateway.ledger import LedgerConflict, LedgerStore, SettlementRecord, SettlementState
from gateway.metrics import Metrics
from gateway.services.call import Call
from gateway.services.cards import Cards
from gateway.services.idempotency import Idempotency
from gateway.services.outbox import Outbox

OUTCOMES = ("settled", "refused", "outcome_unknown", "split_invalid", "reversed")


class Settlements:
    """Settlement orchestration over the federation and the ledger.

    Args:
        cards: card look-up at the issuing region, and the insured region of a card.
        ledger: where settlements and their clearing entries live.
        idempotency: runs each write once per request id.
        outbox: delivers corrections until the region acknowledges them.
        metrics: settlement counters.
        clock: wall time; decides the clearing period and booking day.
    """

    def __init__(
        self,
        cards: Cards,
        ledger: LedgerStore,
        idempotency: Idempotency,
        outbox: Outbox,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cards, self.federation = cards, cards.federation
        self.ledger, self.idempotency, self.outbox, self.metrics, self.clock = (
            ledger,
            idempotency,
            outbox,
            metrics,
            clock,
        )
        for insured, treatment, outcome in product(self.federation.regions, self.federation.regions, OUTCOMES):
            metrics.settlements.labels(insured, treatment, outcome)  # at 0, so the first event shows in rates

    async def file(self, call: Call, card: PresentedCard, request: domain.FileRemoteCare) -> FiledCare:
        """备案 at the insured place's region."""

        async def produce() -> FiledCare:
            credential = await self.cards.credential(card)
            insurance, region = await self.cards.insurance(call, credential)
            filing = replace(request, request_id=call.message_id(request.request_id), credential=credential)
            return FiledCare(
                await self.federation.region(region, call).file_remote_care(filing), region, insurance.insured_area
            )

        return await self.idempotency.run(call, "FileRemoteCare", CardWrite(card, request), produce, FiledCare)

    async def pre_settle(self, call: Call, card: PresentedCard, bill: domain.Bill) -> PreSettled:
        """The split the insured place gives the bill now; nothing is booked."""
        _check_venue(call, bill)
        self.federation.note_venue(call, bill.treatment_area)
        self.federation.region_for_area(bill.treatment_area)
        credential = await self.cards.credential(card)
        insurance, region = await self.cards.insurance(call, credential)
        bill = replace(bill, credential=credential, insured_area=insurance.insured_area)
        split = await self.federation.region(region, call).pre_settle(bill)
        if broken := _violations(bill, split):
            raise RegionSplitInvalid(region, broken)
        return PreSettled(split, insurance.insured_area, region)

    async def settle(self, call: Call, card: PresentedCard, bill: domain.Bill) -> SettlementRecord:
        """Settle a bill once per request id (the module docstring says how)."""
        _check_venue(call, bill)
        return await self.idempotency.run(
            call, "Settle", CardWrite(card, bill), lambda: self._settle(call, card, bill), SettlementRecord
        )

    async def _settle(self, call: Call, card: PresentedCard, bill: domain.Bill) -> SettlementRecord:
        existing = await self.ledger.settlement_by_request(call.participant, bill.request_id)
        if existing is not None:
            return _settled_before(existing)
        self.federation.note_venue(call, bill.treatment_area)
        treatment_region = self.federation.region_for_area(bill.treatment_area)
        credential = await self.cards.credential(card)
        insurance, region = await self.cards.insurance(call, credential)
        request_id, message_id = bill.request_id, call.message_id(bill.request_id)
        bill = replace(bill, request_id=message_id, credential=credential, insured_area=insurance.insured_area)
        record = SettlementRecord(
            settlement_id=f"stl-{uuid.uuid4().hex}",
            participant=call.participant,
            request_id=request_id,
            region_request_id=message_id,
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
            answer = await self.federation.region(region, call).settle(bill)
        except YikatongError as exc:
            if not exc.may_have_reached:  # a refusal, or provably never sent: nothing happened at the region
                await self.ledger.drop_pending(record.settlement_id)
                self.metrics.settlements.labels(*labels, "refused").inc()
                raise
        except asyncio.CancelledError:
            await asyncio.shield(self._void(record, "the caller cancelled before the region answered", labels))
            raise
        else:
            return await self._book(record, bill, answer, labels)
        return await self._resolve(call, record, bill, labels)

    async def _resolve(
        self, call: Call, record: SettlementRecord, bill: domain.Bill, labels: tuple[str, str]
    ) -> SettlementRecord:
        """Ask the region what became of the request id; book it or void it."""
        try:
            region = self.federation.region(record.insured_region, call)
            outcome = await region.settlement_outcome(record.region_request_id)
        except YikatongError:
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

    async def reverse(self, call: Call, request: ReverseRequest) -> SettlementRecord:
        """撤销 once: at the insured region, then booked negative into the period open now."""
        return await self.idempotency.run(
            call, "ReverseSettlement", request, lambda: self._reverse(call, request), SettlementRecord
        )

    async def _reverse(self, call: Call, request: ReverseRequest) -> SettlementRecord:
        record = await self._own(call, request.settlement_id)
        if record.state is not SettlementState.SETTLED:
            raise SettlementNotSettled(record.settlement_id, record.state.value)
        region = self.federation.region(record.insured_region, call)
        reversal = domain.Reversal(
            call.message_id(request.request_id), record.region_request_id, record.social_security_number, request.reason
        )
        try:
            await region.reverse_settlement(reversal)
        except SettlementNotSettled:
            await self._catch_up_reversal(call, record)
            raise SettlementNotSettled(record.settlement_id, SettlementState.REVERSED.value) from None
        try:
            reversed_ = await self.ledger.book_reversal(record.settlement_id, self.clock())
        except LedgerConflict:
            state = (await self._own(call, record.settlement_id)).state.value
            raise SettlementNotSettled(record.settlement_id, state) from None
        treatment_region = self.federation.region_of_province(record.treatment_area[:2])
        self.metrics.settlements.labels(record.insured_region, treatment_region, "reversed").inc()
        return reversed_

    async def _catch_up_reversal(self, call: Call, record: SettlementRecord) -> None:
        """The region already reversed it (an earlier reversal whose answer was lost): book that reversal."""
        region = self.federation.region(record.insured_region, call)
        outcome = await region.settlement_outcome(record.region_request_id)
        if outcome.state is domain.OutcomeState.REVERSED:
            with contextlib.suppress(LedgerConflict):  # booked meanwhile by the reversal that won
                await self.ledger.book_reversal(record.settlement_id, self.clock())

    async def get(self, call: Call, settlement_id: str) -> SettlementRecord:
        """A settlement the caller may see: its own, or any for the clearing role.

        Raises:
            SettlementNotFound: the ledger has none the caller may see.
        """
        if call.caller.has("clearing"):
            return _found(settlement_id, await self.ledger.settlement(settlement_id))
        return await self._own(call, settlement_id)

    async def _own(self, call: Call, settlement_id: str) -> SettlementRecord:
        """The caller's own settlement; another participant's answers as if it did not exist."""
        record = await self.ledger.settlement(settlement_id)
        return _found(settlement_id, record if record is not None and record.participant == call.participant else None)

    async def recover(self) -> list[str]:
        """Void the PENDING settlements a crash left (their callers never got an answer); their ids."""
        voided = await self.ledger.recover_pending(self.clock())
        if voided:
            self.outbox.wake()
        return voided


def _found(settlement_id: str, record: SettlementRecord | None) -> SettlementRecord:
    if record is None:
        raise SettlementNotFound(f"no settlement {settlement_id}", metadata={"settlement_id": settlement_id})
    return record


def _check_venue(call: Call, bill: domain.Bill) -> None:
    """A hospital settles at its own institutions in its own areas."""
    if not call.caller.covers(bill.treatment_area):
        raise CallerOutOfScope(call.participant, "venue.area_code", bill.treatment_area)
    if not call.caller.runs(bill.institution_id):
        raise CallerOutOfScope(call.participant, "venue.institution_id", bill.institution_id)


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
