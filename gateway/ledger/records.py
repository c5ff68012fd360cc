"""The records the hub's ledger keeps: settlements, clearing bookings, outbox items, idempotency claims."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from adapters.domain import Split, VisitType


class Claim(enum.Enum):
    """What :meth:`LedgerStore.claim` found for a request id."""

    NEW = "NEW"  # the caller now owns the request and must complete or release it
    REPLAY = "REPLAY"  # finished before with the same fingerprint: ``outcome`` holds the answer
    IN_PROGRESS = "IN_PROGRESS"  # another call with the same id is running
    MISMATCH = "MISMATCH"  # the id was used for a different request


@dataclass(frozen=True)
class RequestKey:
    """What idempotency is keyed on (DESIGN §6, §10): a request id is unique per participant and method."""

    participant: str
    method: str
    request_id: str


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    outcome: bytes | None = None


@dataclass(frozen=True)
class Started:
    """What :meth:`LedgerStore.start_settlement` found: the claim, and when it is new, a settlement already made
    under the request id, or what the region is owed for the person first (then nothing was begun)."""

    claim: ClaimResult
    existing: SettlementRecord | None = None
    owed: tuple[OutboxItem, ...] = ()


class SettlementState(enum.Enum):
    """Where a settlement stands in the hub's ledger."""

    PENDING = "PENDING"  # sent to the insured region, no answer yet
    SETTLED = "SETTLED"  # confirmed and booked for clearing
    REVERSING = "REVERSING"  # a reversal's intent is written; the region has not confirmed it yet
    REVERSED = "REVERSED"  # reversed once; the reversal is booked too
    CORRECTION_PENDING = "CORRECTION_PENDING"  # unconfirmed or invalid: a correction waits in the outbox
    CORRECTED = "CORRECTED"  # the region acknowledged the correction; never booked


@dataclass(frozen=True)
class SettlementRecord:
    """One settlement row. ``split`` and ``period`` are set once SETTLED; money in fen.

    ``request_id`` is the settling participant's; ``region_request_id`` is the message id the region knows it by.
    ``sealed_ssn`` is the person's SSN sealed with AES-GCM (``gateway.personal.Sealer``), never the number;
    ``person_key`` a keyed hash of it.
    """

    settlement_id: str
    participant: str
    request_id: str
    region_request_id: str
    state: SettlementState
    sealed_ssn: str
    insured_area: str
    treatment_area: str
    insured_region: str
    institution_id: str
    visit_type: VisitType
    hospital_level: int
    created_at: float
    region_settlement_id: str = ""
    split: Split | None = None
    settled_at: float | None = None
    period: str = ""
    reversed_at: float | None = None
    reversal_period: str = ""
    void_reason: str = ""
    bill_total_fen: int = 0
    person_key: str = ""
    reversal_request_id: str = ""
    reversal_reason: str = ""
    updated_at: float = 0.0
    leased_by: str = ""


@dataclass(frozen=True)
class OutboxItem:
    """A message the hub owes a region, kept until the region acknowledges it."""

    kind: str  # CORRECTION, REVERSAL or ADVICE
    key: str  # for a correction: the settlement's request id
    region: str
    payload: str
    created_at: float
    attempts: int


@dataclass(frozen=True)
class Booking:
    """One clearing entry: +1 and the fund payment for a settlement, −1 and its negation for a reversal."""

    settlement_id: str
    kind: str
    period: str
    booked_on: str
    insured_province: str
    treatment_province: str
    treatment_area: str
    count: int
    fund_pay_fen: int
    participant: str


CORRECTION = "CORRECTION"  # 冲正 of a settlement whose outcome is unknown; key: its region message id
REVERSAL = "REVERSAL"  # 撤销 still to be confirmed by the region; key: the reversal's message id
ADVICE = "ADVICE"  # a stand-in grant the region is told of; key: the advice id
PRIORITY = {CORRECTION: 0, REVERSAL: 0, ADVICE: 1}
"""Within a region, money before advices: lower goes first."""
