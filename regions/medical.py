"""The insured place's medical-insurance system a sandbox stands in for (DESIGN §4.5).

It holds each insured person's personal account and yearly accumulators per visit type (initial values from
the seed), the remote-care filings, and the settlements keyed by the caller's message id:

* ``settle`` is idempotent on the message id (same bill → the first settlement again; another bill →
  ``IdempotencyKeyReused``);
* ``outcome`` answers what happened to a message id;
* ``correct`` (冲正) voids a message id whether or not it was applied, so a late arrival is refused;
* ``reverse`` (撤销) undoes a settlement once, restoring accumulators and account exactly.

Protocol servers translate their wire format to these calls, as for :class:`regions.cardsystem.CardSystem`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from adapters.domain import (
    Bill,
    FileRemoteCare,
    Filing,
    FilingType,
    InsuranceType,
    OutcomeState,
    RegionSettlement,
    Reversal,
    SettlementOutcome,
    Split,
    VisitType,
)
from adapters.errors import (
    HolderMismatch,
    IdempotencyKeyReused,
    NotInsured,
    Refusal,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
)
from regions.cardsystem import SandboxClock, _fingerprint
from regions.faults import Faults
from regions.policy import Accumulator, FilingCover, Policy, PolicyKey, compute_split
from regions.seed import SeededPerson

BEIJING = dt.timezone(dt.timedelta(hours=8))


@dataclass
class Insured:
    """One insured person's money at the region."""

    name: str
    insured_area: str
    insurance_type: InsuranceType
    account_balance_fen: int
    accumulators: dict[tuple[int, VisitType], Accumulator]
    filings: list[Filing] = field(default_factory=list)


@dataclass
class SettlementRow:
    request_id: str
    fingerprint: str
    social_security_number: str
    year: int
    visit_type: VisitType
    state: OutcomeState
    settlement: RegionSettlement | None = None


class MedicalSystem:
    """One region's medical-insurance system, seeded with the region's insured people.

    Args:
        region_id: the region's id (used in settlement and filing ids).
        people: the seeded people; those with insurance get an account and this year's accumulators.
        policies: the policy table of every province (``regions.policy.load_policies``).
        clock: the sandbox clock; settlements count towards the year it shows (Beijing time).
        faults: ``unbalanced_splits`` makes settle answer a split one fen off, as a broken region would.
    """

    def __init__(
        self,
        region_id: str,
        people: list[SeededPerson],
        policies: dict[PolicyKey, Policy],
        clock: SandboxClock,
        faults: Faults | None = None,
    ) -> None:
        self.region_id = region_id
        self.policies = policies
        self.clock = clock
        self.faults = faults or Faults()
        self.insured: dict[str, Insured] = {}
        self.settlements: dict[str, SettlementRow] = {}
        self.corrections: list[str] = []  # every correction received, in order (a repeat is listed again)
        self._reversals: dict[str, tuple[str, Refusal | None]] = {}
        self._filings: dict[str, tuple[str, Filing]] = {}
        self._serial = 0
        year = self.today().year
        for p in people:
            if p.insurance is None:
                continue
            accumulators = {
                (year, VisitType(visit)): Accumulator(a["deductible_used_fen"], a["fund_paid_fen"])
                for visit, a in p.accumulators.items()
            }
            self.insured[p.social_security_number] = Insured(
                p.name, p.insurance.insured_area, p.insurance.insurance_type, p.account_balance_fen, accumulators
            )

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.clock.now(), BEIJING).date()

    # --- reads -----------------------------------------------------------------------------------

    def person(self, ssn: str, name: str = "") -> Insured:
        """The insured person, checking the name when given."""
        person = self.insured.get(ssn)
        if person is None:
            raise NotInsured(f"{self.region_id} has no medical insurance for this person", metadata={})
        if name and name != person.name:
            raise HolderMismatch("name does not match the insured person's record", metadata={})
        return person

    def accumulator(self, ssn: str, visit_type: VisitType, year: int | None = None) -> Accumulator:
        person = self.person(ssn)
        return person.accumulators.get((year or self.today().year, visit_type), Accumulator())

    def policy(self, person: Insured, visit_type: VisitType) -> Policy:
        return self.policies[(person.insured_area[:2], person.insurance_type, visit_type)]

    def pre_settle(self, bill: Bill) -> Split:
        """The split the bill would get now; nothing changes."""
        person = self.person(bill.credential.social_security_number, bill.credential.holder_name)
        return self._split(person, bill)

    def outcome(self, request_id: str) -> SettlementOutcome:
        row = self.settlements.get(request_id)
        if row is None:
            return SettlementOutcome(OutcomeState.NOT_FOUND)
        return SettlementOutcome(row.state, row.settlement)

    # --- writes ------------------------------------------------------------------------------------

    def file(self, msgid: str, request: FileRemoteCare) -> Filing:
        """备案; a repeat of the message id returns the same filing, or is refused when the request differs."""
        fingerprint = _fingerprint(*(value for key, value in vars(request).items() if key != "request_id"))
        if msgid in self._filings:
            stored, filing = self._filings[msgid]
            if stored != fingerprint:
                raise IdempotencyKeyReused(msgid)
            return filing
        person = self.person(request.credential.social_security_number, request.credential.holder_name)
        self._serial += 1
        filing = Filing(
            f"{self.region_id}-F{self._serial:07d}",
            request.treatment_area,
            request.filing_type,
            request.valid_from,
            request.valid_until,
        )
        person.filings.append(filing)
        self._filings[msgid] = (fingerprint, filing)
        return filing

    def settle(self, bill: Bill) -> RegionSettlement:
        """Settle once per message id (``bill.request_id``); see the module docstring."""
        fingerprint = _fingerprint(*(value for key, value in vars(bill).items() if key != "request_id"))
        row = self.settlements.get(bill.request_id)
        if row is not None:
            if row.state is OutcomeState.CORRECTED:
                raise SettlementCorrected(
                    f"settlement {bill.request_id} was corrected", metadata={"request_id": bill.request_id}
                )
            if row.fingerprint != fingerprint:
                raise IdempotencyKeyReused(bill.request_id)
            assert row.settlement is not None
            return self._answer(row.settlement)
        ssn = bill.credential.social_security_number
        person = self.person(ssn, bill.credential.holder_name)
        split = self._split(person, bill)
        self._serial += 1
        settlement = RegionSettlement(bill.request_id, f"{self.region_id}-S{self._serial:08d}", split)
        row = SettlementRow(bill.request_id, fingerprint, ssn, self.today().year, bill.visit_type, OutcomeState.SETTLED)
        row.settlement = settlement
        self._apply(row, +1)
        self.settlements[bill.request_id] = row
        return self._answer(settlement)

    def correct(self, request_id: str) -> None:
        """冲正: void the message id; an applied settlement is undone, an unseen id is marked void."""
        self.corrections.append(request_id)
        row = self.settlements.get(request_id)
        if row is None:
            self.settlements[request_id] = SettlementRow(
                request_id, "", "", 0, VisitType.OUTPATIENT, OutcomeState.CORRECTED
            )
        elif row.state is OutcomeState.SETTLED:
            self._apply(row, -1)
            row.state = OutcomeState.CORRECTED

    def reverse(self, reversal: Reversal) -> None:
        """撤销 once; a repeat of the reversal's own message id answers as the first time did."""
        fingerprint = _fingerprint(reversal.settlement_request_id, reversal.social_security_number)
        if reversal.request_id in self._reversals:
            stored, refusal = self._reversals[reversal.request_id]
            if stored != fingerprint:
                raise IdempotencyKeyReused(reversal.request_id)
            if refusal is not None:
                raise refusal
            return
        try:
            self._reverse(reversal)
        except (SettlementNotFound, SettlementNotSettled) as exc:
            self._reversals[reversal.request_id] = (fingerprint, exc)
            raise
        self._reversals[reversal.request_id] = (fingerprint, None)

    # --- internals ---------------------------------------------------------------------------------

    def _reverse(self, reversal: Reversal) -> None:
        row = self.settlements.get(reversal.settlement_request_id)
        if row is None or row.social_security_number not in ("", reversal.social_security_number):
            raise SettlementNotFound(
                f"no settlement {reversal.settlement_request_id} for this person",
                metadata={"request_id": reversal.settlement_request_id},
            )
        if row.state is not OutcomeState.SETTLED:
            raise SettlementNotSettled(reversal.settlement_request_id, row.state.value)
        self._apply(row, -1)
        row.state = OutcomeState.REVERSED

    def _split(self, person: Insured, bill: Bill) -> Split:
        ssn = bill.credential.social_security_number
        return compute_split(
            self.policy(person, bill.visit_type),
            bill.lines,
            hospital_level=bill.hospital_level,
            later_admission=bill.later_admission,
            filing=self._cover(person, bill.treatment_area),
            accumulator=self.accumulator(ssn, bill.visit_type),
            account_balance_fen=person.account_balance_fen,
            use_personal_account=bill.use_personal_account,
        )

    def _cover(self, person: Insured, treatment_area: str) -> FilingCover:
        today = self.today().isoformat()
        kinds: set[FilingType] = {
            f.filing_type
            for f in person.filings
            if f.valid_from <= today <= f.valid_until
            and (f.treatment_area == treatment_area or f.treatment_area == treatment_area[:2] + "0000")
        }
        if any(kind.long_term for kind in kinds):
            return FilingCover.LONG_TERM
        return FilingCover.TEMPORARY if kinds else FilingCover.NONE

    def _apply(self, row: SettlementRow, sign: int) -> None:
        """Add (+1) or take back (−1) a settlement's deductible, fund payment and account debit."""
        assert row.settlement is not None
        split = row.settlement.split
        person = self.insured[row.social_security_number]
        key = (row.year, row.visit_type)
        before = person.accumulators.get(key, Accumulator())
        person.accumulators[key] = Accumulator(
            before.deductible_used_fen + sign * split.deductible_fen,
            before.fund_paid_fen + sign * split.fund_pay_fen,
        )
        person.account_balance_fen -= sign * split.account_pay_fen

    def _answer(self, settlement: RegionSettlement) -> RegionSettlement:
        if not self.faults.unbalanced_splits:
            return settlement
        broken = replace(settlement.split, fund_pay_fen=settlement.split.fund_pay_fen + 1)
        return replace(settlement, split=broken)
