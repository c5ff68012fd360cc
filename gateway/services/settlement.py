"""Cross-province medical settlement at the hub (DESIGN §4.5, §6): route, settle once, book, or void.

A settlement goes to the insured place's region. First, whatever the hub still owes that region for the same
person — a correction, a reversal — is delivered, so no bill is priced on stale accumulators (else the settle is
refused ``UNAVAILABLE`` / ``CORRECTION_PENDING``). Before the region is asked, the ledger records the settlement
as PENDING (the durable intent); then exactly one of these happens:

* the region settles and the split balances → SETTLED, booked for clearing in the same transaction;
* the region refuses, or provably never got the request (the connection was refused or never made) → the
  PENDING row is dropped, the refusal answered;
* the outcome is unknown (timeout, a "down" answer, a lost connection, an unreadable answer, a cancelled call)
  → the region is asked for the outcome of the request id; SETTLED there → booked as above; anything else →
  CORRECTION_PENDING with a correction (冲正) queued in the durable outbox in the same transaction, and the
  caller told the bill is not settled;
* the split breaks an invariant → refused, corrected through the outbox, never booked.

A PENDING row the call could not finish (the hub died, the ledger failed at the wrong moment) is resolved the
same way by the sweeper (``gateway.services.sweeper``) once its lease is over.

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
from collections.abc import Awaitable, Callable
from dataclasses import replace
from itertools import product

from adapters import domain
from adapters.errors import RegionSplitInvalid, SettlementCorrected, SettlementNotFound, YikatongError
from gateway.domain import CardWrite, ECardToken, FiledCare, PresentedCard, PreSettled
from gateway.errors import CallerOutOfScope, CorrectionPending, RequestInProgress, SettlementOutcomeUnknown
from gateway.ledger import Claim, LedgerConflict, LedgerStore, RequestKey, SettlementRecord, SettlementState
from gateway.ledger.audit import AuditEntry
from gateway.masking import mask_text
from gateway.metrics import Metrics
from gateway.personal import Sealer
from gateway.services.audit import Auditor, outcome_of
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
        auditor: describes every change for the audit chain; its keyed hash names a settlement's person.
        sealer: seals the SSN a settlement keeps (a reversal sends it again).
        clock: wall time; decides the clearing period and booking day.
    """

    def __init__(
        self,
        cards: Cards,
        ledger: LedgerStore,
        idempotency: Idempotency,
        outbox: Outbox,
        metrics: Metrics,
        auditor: Auditor,
        sealer: Sealer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cards, self.federation, self.ledger, self.idempotency = cards, cards.federation, ledger, idempotency
        self.outbox, self.metrics, self.auditor, self.sealer, self.clock = outbox, metrics, auditor, sealer, clock
        self.person_key = auditor.persons
        for insured, treatment, outcome in product(self.federation.regions, self.federation.regions, OUTCOMES):
            metrics.settlements.labels(insured, treatment, outcome)  # at 0, so the first event shows in rates

    async def file(self, call: Call, card: PresentedCard, request: domain.FileRemoteCare) -> FiledCare:
        """备案 at the insured place's region."""

        async def produce() -> FiledCare:
            credential = await self.cards.credential(card)
            insurance, region = await self.cards.insurance(call, credential)
            filing = replace(request, request_id=call.message_id(request.request_id), credential=credential)
            filed = await self.federation.region(region, call).file_remote_care(filing)
            return FiledCare(filed, region, insurance.insured_area)

        return await self.idempotency.run(
            call, "FileRemoteCare", CardWrite(card, request), produce, FiledCare, audited=True
        )

    async def pre_settle(self, call: Call, card: PresentedCard, bill: domain.Bill) -> PreSettled:
        """The split the insured place gives the bill now; nothing is booked."""
        _check_venue(call, bill)
        self.federation.note_venue(call, bill.treatment_area)
        self.federation.region_for_area(bill.treatment_area)
        credential = await self.cards.credential(card)
        insurance, region = await self.cards.insurance(call, credential)
        bill = replace(bill, credential=credential, insured_area=insurance.insured_area)
        split = await self.federation.region(region, call).pre_settle(bill)
        if broken := _violations(_total(bill), split):
            raise RegionSplitInvalid(region, broken)
        return PreSettled(split, insurance.insured_area, region)

    async def settle(self, call: Call, card: PresentedCard, bill: domain.Bill) -> SettlementRecord:
        """Settle a bill once per request id (the module docstring says how).

        Two ledger transactions carry a settlement that goes well: the request id's claim with the settlement's
        intent, and the booking with the idempotency record's answer (and each its audit record).
        """
        _check_venue(call, bill)
        key, fingerprint = self.idempotency.key(call, "Settle", CardWrite(card, bill))
        if isinstance(card, ECardToken):  # a retry answers from its record without presenting the used token again
            replayed = await self.idempotency.replayed(key, fingerprint, SettlementRecord)
            if replayed is not None:
                return replayed
        self.federation.note_venue(call, bill.treatment_area)
        self.federation.region_for_area(bill.treatment_area)
        credential = await self.cards.credential(card)
        try:
            insurance, region = await self.cards.insurance(call, credential)
        except YikatongError as exc:
            if exc.retryable and (earlier := await self._earlier_answer(call, key, fingerprint)) is not None:
                return earlier
            raise
        record = self._intent(call, bill, credential, insurance.insured_area, region)
        started = await self.ledger.start_settlement(key, fingerprint, record)
        if started.claim.claim is not Claim.NEW:
            return self.idempotency.answer_of(key, started.claim, SettlementRecord)
        bill = replace(
            bill, request_id=record.region_request_id, credential=credential, insured_area=insurance.insured_area
        )
        try:
            if started.existing is not None:
                if started.existing.state is SettlementState.PENDING:  # an earlier call ended before its booking
                    return await self._once(started.existing, key, self._settle_pending(call, started.existing, key))
                answer = _settled_before(started.existing)
                await self.ledger.complete(key, self.idempotency.sealed(answer))
                return answer
            if started.owed:
                if not await self.outbox.deliver_now(started.owed):
                    raise CorrectionPending(region)
                await self.ledger.begin_settlement(record)
            return await self._once(record, key, self._send(call, record, bill, key))
        except YikatongError as exc:
            await self.idempotency.failed(key, exc)
            raise
        except BaseException:
            await self.ledger.release(key)
            raise

    async def _earlier_answer(self, call: Call, key: RequestKey, fingerprint: str) -> SettlementRecord | None:
        """For a retry whose card cannot be looked up now: what an earlier call of its request id came to — the
        recorded answer, or ``REQUEST_IN_PROGRESS`` while that call's settlement is PENDING (the region may have
        settled it, so the region's trouble must not read as "nothing happened"); None when no call got as far."""
        if (replayed := await self.idempotency.replayed(key, fingerprint, SettlementRecord)) is not None:
            return replayed
        earlier = await self.ledger.settlement_by_request(call.participant, key.request_id)
        if earlier is not None and earlier.state is SettlementState.PENDING:
            raise RequestInProgress(key.request_id)
        return None if earlier is None else _settled_before(earlier)

    def _intent(
        self, call: Call, bill: domain.Bill, credential: domain.CardCredential, insured_area: str, region: str
    ) -> SettlementRecord:
        """The PENDING row of a settlement, as it is written before the region is asked."""
        return SettlementRecord(
            settlement_id=f"stl-{uuid.uuid4().hex}",
            participant=call.participant,
            request_id=bill.request_id,
            region_request_id=call.message_id(bill.request_id),
            state=SettlementState.PENDING,
            sealed_ssn=self.sealer.seal(credential.social_security_number),
            insured_area=insured_area,
            treatment_area=bill.treatment_area,
            insured_region=region,
            institution_id=bill.institution_id,
            visit_type=bill.visit_type,
            hospital_level=bill.hospital_level,
            created_at=self.clock(),
            bill_total_fen=_total(bill),
            person_key=self.person_key(credential.social_security_number),
        )

    async def _once(
        self, record: SettlementRecord, key: RequestKey, step: Awaitable[SettlementRecord]
    ) -> SettlementRecord:
        """``step`` — sending a PENDING settlement, or resolving one — unless the sweeper took the row over."""
        try:
            return await step
        except LedgerConflict:  # the sweeper took the row over (the call outlived its lease): answer as it stands
            now = await self.ledger.settlement(record.settlement_id)
            if now is not None and now.state is SettlementState.SETTLED:
                await self.ledger.complete(key, self.idempotency.sealed(now))
                return now
            raise SettlementOutcomeUnknown(record.settlement_id, record.insured_region) from None

    async def _send(self, call: Call, record: SettlementRecord, bill: domain.Bill, key: RequestKey) -> SettlementRecord:
        """Ask the region to settle a PENDING settlement, and book (completing ``key``), drop or void it."""
        try:
            answer = await self.federation.region(record.insured_region, call).settle(bill)
        except YikatongError as exc:
            if not exc.may_have_reached:  # a refusal, or provably never sent: nothing happened at the region
                entry = self.entry(call, record, outcome_of(exc), exc.reason)
                await self.ledger.drop_pending(record.settlement_id, entry)
                self.metrics.settlements.labels(*self._labels(record), "refused").inc()
                raise
        except asyncio.CancelledError:
            await asyncio.shield(self._abandon(call, record, "the caller cancelled before the region answered"))
            raise
        else:
            return await self._book(call, record, answer, key)
        try:
            return await self._settle_pending(call, record, key)
        except asyncio.CancelledError:
            await asyncio.shield(self._abandon(call, record, "the caller cancelled while the outcome was asked"))
            raise

    async def _settle_pending(self, call: Call, record: SettlementRecord, key: RequestKey) -> SettlementRecord:
        """A retry finding its PENDING row, the earlier call over (it lost its ledger at the booking, or its
        process): the region's outcome is asked and booked now, as the sweeper would later."""
        settled = await self.resolve(call, record, key)
        if settled.state is not SettlementState.SETTLED:
            raise SettlementOutcomeUnknown(record.settlement_id, record.insured_region)
        return settled

    async def resolve(self, call: Call, record: SettlementRecord, key: RequestKey | None = None) -> SettlementRecord:
        """A PENDING settlement whose answer was lost: ask the region what became of it, then book it (completing
        ``key``) or void it (a correction goes into the outbox). Returns the settlement as it now stands."""
        try:
            outcome = await self.federation.region(record.insured_region, call).settlement_outcome(
                record.region_request_id
            )
        except YikatongError:
            outcome = domain.SettlementOutcome(domain.OutcomeState.NOT_FOUND)
        if outcome.state is domain.OutcomeState.SETTLED and outcome.settlement is not None:
            return await self._book(call, record, outcome.settlement, key)
        return await self._void(call, record, f"outcome unknown (region said {outcome.state.value})")

    async def _book(
        self, call: Call, record: SettlementRecord, answer: domain.RegionSettlement, key: RequestKey | None = None
    ) -> SettlementRecord:
        if broken := _violations(record.bill_total_fen, answer.split):
            await self._void(call, record, "split breaks " + "; ".join(broken), outcome="split_invalid")
            raise RegionSplitInvalid(record.insured_region, broken)
        entry = self.entry(call, record, "OK", "SETTLED", vars(answer.split))
        completes = None if key is None else (key, self.idempotency.sealed)
        booked = await self.ledger.book_settlement(
            record.settlement_id, answer.region_settlement_id, answer.split, self.clock(), entry, completes
        )
        self.metrics.settlements.labels(*self._labels(record), "settled").inc()
        self.metrics.settlement_fund_pay.labels(*self._labels(record)).inc(answer.split.fund_pay_fen)
        return booked

    async def _void(
        self, call: Call, record: SettlementRecord, reason: str, outcome: str = "outcome_unknown"
    ) -> SettlementRecord:
        entry = self.entry(call, record, "FAILED", outcome.upper(), objects={"void_reason": mask_text(reason)})
        voided = await self.ledger.void_settlement(record.settlement_id, mask_text(reason), self.clock(), entry)
        self.metrics.settlements.labels(*self._labels(record), outcome).inc()
        self.outbox.wake()
        return voided

    async def _abandon(self, call: Call, record: SettlementRecord, reason: str) -> None:
        """Void a settlement its caller gave up on, unless it was settled or voided meanwhile."""
        with contextlib.suppress(LedgerConflict):
            await self._void(call, record, reason)

    def entry(
        self,
        call: Call,
        record: SettlementRecord,
        outcome: str,
        reason: str,
        amounts: dict[str, int] | None = None,
        objects: dict[str, str] | None = None,
    ) -> AuditEntry:
        """The audit entry of a change to a settlement (the person by the keyed hash it already has)."""
        entry = self.auditor.entry(
            call,
            outcome,
            reason,
            objects={"settlement_id": record.settlement_id, "region": record.insured_region, **(objects or {})},
            amounts=amounts,
        )
        return replace(entry, persons=(record.person_key,))

    def _labels(self, record: SettlementRecord) -> tuple[str, str]:
        return record.insured_region, self.federation.region_of_province(record.treatment_area[:2]) or "unfederated"

    async def get(self, call: Call, settlement_id: str) -> SettlementRecord:
        """A settlement the caller may see: its own, or any for the clearing role.

        Raises:
            SettlementNotFound: the ledger has none the caller may see.
        """
        if call.caller.has("clearing"):
            return _found(settlement_id, await self.ledger.settlement(settlement_id))
        return await self.own(call, settlement_id)

    async def own(self, call: Call, settlement_id: str) -> SettlementRecord:
        """The caller's own settlement; another participant's answers as if it did not exist."""
        record = await self.ledger.settlement(settlement_id)
        return _found(settlement_id, record if record is not None and record.participant == call.participant else None)


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


def _total(bill: domain.Bill) -> int:
    return sum(line.amount_fen for line in bill.lines)


def _violations(bill_total_fen: int, split: domain.Split) -> list[str]:
    broken = split.violations()
    if split.total_fen != bill_total_fen:
        broken.append("total != the bill's line amounts")
    return broken


def _settled_before(record: SettlementRecord) -> SettlementRecord:
    """What a request id that already has a finished settlement row answers (a retry after a crash or a void)."""
    if record.state in (SettlementState.SETTLED, SettlementState.REVERSING, SettlementState.REVERSED):
        return record
    raise SettlementCorrected(
        f"settlement {record.settlement_id} was voided ({record.void_reason}); settle again under a new request_id",
        metadata={"settlement_id": record.settlement_id, "state": record.state.value},
    )
