"""The hub's ledger: the records it keeps and the store interface every ledger implements.

It holds the idempotency records, the settlements with their clearing bookings, the durable outbox and the
closed clearing periods. Every change that must not be half-done is one transaction of the store: a
settlement booked with its clearing entry, a settlement voided with its correction queued in the outbox, a
delivered correction with the settlement it voids. ``gateway.sqlite_ledger`` is the embedded store.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from adapters.domain import Split, VisitType


class LedgerConflict(Exception):
    """A state change that the row's current state does not allow (a bug or a lost race)."""


class Claim(enum.Enum):
    """What :meth:`LedgerStore.claim` found for a request id."""

    NEW = "NEW"  # the caller now owns the request and must complete or release it
    REPLAY = "REPLAY"  # finished before with the same fingerprint: ``outcome`` holds the answer
    IN_PROGRESS = "IN_PROGRESS"  # another call with the same id is running
    MISMATCH = "MISMATCH"  # the id was used for a different request


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    outcome: bytes | None = None


class SettlementState(enum.Enum):
    """Where a settlement stands in the hub's ledger."""

    PENDING = "PENDING"  # sent to the insured region, no answer yet
    SETTLED = "SETTLED"  # confirmed and booked for clearing
    REVERSED = "REVERSED"  # reversed once; the reversal is booked too
    CORRECTION_PENDING = "CORRECTION_PENDING"  # unconfirmed or invalid: a correction waits in the outbox
    CORRECTED = "CORRECTED"  # the region acknowledged the correction; never booked


@dataclass(frozen=True)
class SettlementRecord:
    """One settlement row. ``split`` and ``period`` are set once SETTLED; money in fen."""

    settlement_id: str
    request_id: str
    state: SettlementState
    social_security_number: str
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


@dataclass(frozen=True)
class OutboxItem:
    """A message the hub owes a region, kept until the region acknowledges it."""

    kind: str  # CORRECTION
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


CORRECTION = "CORRECTION"
ADVICE = "ADVICE"


class LedgerStore(Protocol):
    """What the hub needs of its ledger; SQLite now, PostgreSQL for several replicas."""

    async def claim(self, method: str, request_id: str, fingerprint: str) -> ClaimResult: ...

    async def complete(self, method: str, request_id: str, outcome: bytes) -> None: ...

    async def release(self, method: str, request_id: str) -> None: ...

    async def close(self) -> None: ...

    async def begin_settlement(self, record: SettlementRecord) -> None: ...

    async def settlement(self, settlement_id: str) -> SettlementRecord | None: ...

    async def settlement_by_request(self, request_id: str) -> SettlementRecord | None: ...

    async def drop_pending(self, settlement_id: str) -> None: ...

    async def book_settlement(
        self, settlement_id: str, region_settlement_id: str, split: Split, now: float
    ) -> SettlementRecord: ...

    async def book_reversal(self, settlement_id: str, now: float) -> SettlementRecord: ...

    async def void_settlement(self, settlement_id: str, reason: str, now: float) -> SettlementRecord: ...

    async def recover_pending(self, now: float) -> list[str]: ...

    async def enqueue(self, kind: str, key: str, region: str, payload: str, now: float) -> None: ...

    async def outbox_due(self, now: float, limit: int) -> list[OutboxItem]: ...

    async def outbox_delivered(self, item: OutboxItem, now: float) -> None: ...

    async def outbox_failed(self, item: OutboxItem, error: str, retry_at: float) -> None: ...

    async def outbox_backlog(self) -> tuple[int, float | None]: ...

    async def bookings(self, period: str) -> list[Booking]: ...

    async def bookings_on(self, day: str, treatment_area: str) -> list[Booking]: ...

    async def closed_report(self, period: str) -> tuple[float, str] | None: ...

    async def close_period(self, period: str, report: str, now: float) -> tuple[float, str]: ...

    async def use_token(self, token_id: str, expires_at: float, now: float) -> bool: ...
