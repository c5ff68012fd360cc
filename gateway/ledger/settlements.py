"""Settlements and their clearing bookings (DESIGN §4.5, §4.6).

Each state change that must not be half-done is one operation, hence one transaction: a settlement booked with
its clearing entry, a reversal with its negative entry, a void with its correction queued in the outbox.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.domain import Split, VisitType
from gateway.ledger import outbox
from gateway.ledger.clearing import open_period
from gateway.ledger.records import CORRECTION, SettlementRecord, SettlementState
from gateway.ledger.worker import Db
from gateway.periods import day_of

_COLUMNS = (
    "settlement_id, participant, request_id, region_request_id, state, social_security_number, insured_area, "
    "treatment_area, insured_region, "
    "institution_id, visit_type, hospital_level, created_at, region_settlement_id, split, settled_at, period, "
    "reversed_at, reversal_period, void_reason"
)


class LedgerConflict(Exception):
    """A state change that the row's current state does not allow (a bug or a lost race)."""


def _record(row: tuple[Any, ...]) -> SettlementRecord:
    values = list(row)
    values[4] = SettlementState(values[4])
    values[10] = VisitType(values[10])
    values[14] = Split(**json.loads(values[14])) if values[14] else None
    return SettlementRecord(*values)


def get(db: Db, settlement_id: str) -> SettlementRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM settlements WHERE settlement_id = ?", (settlement_id,)).fetchone()
    return _record(row) if row else None


def by_request(db: Db, participant: str, request_id: str) -> SettlementRecord | None:
    """The settlement a participant asked for under ``request_id``."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM settlements WHERE participant = ? AND request_id = ?", (participant, request_id)
    ).fetchone()
    return _record(row) if row else None


def begin(db: Db, r: SettlementRecord) -> None:
    """Record a settlement as PENDING before the region is asked (the durable intent)."""
    db.execute(
        "INSERT INTO settlements (settlement_id, participant, request_id, region_request_id, state, "
        "social_security_number, insured_area, treatment_area, insured_region, institution_id, visit_type, "
        "hospital_level, created_at) VALUES (?, ?, ?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            r.settlement_id,
            r.participant,
            r.request_id,
            r.region_request_id,
            r.social_security_number,
            r.insured_area,
            r.treatment_area,
            r.insured_region,
            r.institution_id,
            r.visit_type.value,
            r.hospital_level,
            r.created_at,
        ),
    )


def drop_pending(db: Db, settlement_id: str) -> None:
    """Forget a PENDING settlement the region refused or never received."""
    db.execute("DELETE FROM settlements WHERE settlement_id = ? AND state = 'PENDING'", (settlement_id,))


def book(db: Db, settlement_id: str, region_settlement_id: str, split: Split, now: float) -> SettlementRecord:
    """PENDING → SETTLED with its clearing entry in the open period."""
    period = open_period(db, now)
    changed = db.execute(
        "UPDATE settlements SET state = 'SETTLED', region_settlement_id = ?, split = ?, fund_pay_fen = ?, "
        "settled_at = ?, period = ? WHERE settlement_id = ? AND state = 'PENDING'",
        (region_settlement_id, json.dumps(vars(split)), split.fund_pay_fen, now, period, settlement_id),
    ).rowcount
    record = get(db, settlement_id)
    if record is None or not changed:
        raise LedgerConflict(f"settlement {settlement_id} is not PENDING")
    _book(db, record, "SETTLE", period, now, +1)
    return record


def book_reversal(db: Db, settlement_id: str, now: float) -> SettlementRecord:
    """SETTLED → REVERSED with a negative clearing entry in the period open now."""
    period = open_period(db, now)
    changed = db.execute(
        "UPDATE settlements SET state = 'REVERSED', reversed_at = ?, reversal_period = ? "
        "WHERE settlement_id = ? AND state = 'SETTLED'",
        (now, period, settlement_id),
    ).rowcount
    record = get(db, settlement_id)
    if record is None or not changed:
        raise LedgerConflict(f"settlement {settlement_id} is not SETTLED")
    _book(db, record, "REVERSE", period, now, -1)
    return record


def _book(db: Db, r: SettlementRecord, kind: str, period: str, now: float, sign: int) -> None:
    assert r.split is not None
    db.execute(
        "INSERT INTO bookings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            r.settlement_id,
            kind,
            period,
            day_of(now),
            r.insured_area[:2],
            r.treatment_area[:2],
            r.treatment_area,
            sign,
            sign * r.split.fund_pay_fen,
            r.participant,
        ),
    )


def void(db: Db, settlement_id: str, reason: str, now: float) -> SettlementRecord:
    """PENDING → CORRECTION_PENDING with its correction queued in the outbox."""
    db.execute(
        "UPDATE settlements SET state = 'CORRECTION_PENDING', void_reason = ? "
        "WHERE settlement_id = ? AND state = 'PENDING'",
        (reason, settlement_id),
    )
    record = get(db, settlement_id)
    if record is None or record.state is not SettlementState.CORRECTION_PENDING:
        raise LedgerConflict(f"settlement {settlement_id} cannot be voided")
    outbox.enqueue(db, CORRECTION, record.region_request_id, record.insured_region, now)
    return record


def recover_pending(db: Db, now: float) -> list[str]:
    """Void every PENDING settlement left by a crash (its caller never got an answer); their ids."""
    rows = db.execute("SELECT settlement_id FROM settlements WHERE state = 'PENDING'").fetchall()
    for (settlement_id,) in rows:
        void(db, settlement_id, "the hub stopped before the region answered", now)
    return [row[0] for row in rows]


def corrected(db: Db, region_request_id: str) -> None:
    """A delivered correction (keyed on the region's message id) makes its settlement CORRECTED."""
    db.execute(
        "UPDATE settlements SET state = 'CORRECTED' WHERE region_request_id = ? AND state = 'CORRECTION_PENDING'",
        (region_request_id,),
    )
