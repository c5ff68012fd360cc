"""Settlements and their clearing bookings (DESIGN §4.5, §4.6).

Each state change that must not be half-done is one operation, hence one transaction: a settlement booked with
its clearing entry (and the period's pair totals), a reversal with its negative entry, a void with its
correction queued in the outbox, a reversal's intent, a reversal handed to the outbox.

::

    PENDING ──▶ SETTLED ──▶ REVERSING ──▶ REVERSED
       │                        │
       └──▶ CORRECTION_PENDING  └──▶ SETTLED (the region refused the reversal, or it never left)
                 │
                 └──▶ CORRECTED
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from adapters.domain import Split, VisitType
from gateway.ledger import outbox
from gateway.ledger.clearing import add_to_totals, open_period
from gateway.ledger.records import CORRECTION, REVERSAL, OutboxItem, SettlementRecord, SettlementState
from gateway.ledger.worker import Db, locking
from gateway.periods import day_of

_FIELDS = [f.name for f in dataclasses.fields(SettlementRecord)]
_COLUMNS = ", ".join(_FIELDS)
_STATE, _VISIT, _SPLIT = _FIELDS.index("state"), _FIELDS.index("visit_type"), _FIELDS.index("split")
_UNRESOLVED = ("PENDING", "REVERSING")


class LedgerConflict(Exception):
    """A state change that the row's current state does not allow (a bug or a lost race)."""


def _record(row: tuple[Any, ...]) -> SettlementRecord:
    values = list(row)
    values[_STATE] = SettlementState(values[_STATE])
    values[_VISIT] = VisitType(values[_VISIT])
    values[_SPLIT] = Split(**json.loads(values[_SPLIT])) if values[_SPLIT] else None
    return SettlementRecord(*values)


def _one(db: Db, where: str, *params: Any) -> SettlementRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM settlements WHERE {where}", params).fetchone()
    return _record(row) if row else None


def get(db: Db, settlement_id: str) -> SettlementRecord | None:
    return _one(db, "settlement_id = ?", settlement_id)


def by_request(db: Db, participant: str, request_id: str) -> SettlementRecord | None:
    """The settlement a participant asked for under ``request_id``."""
    return _one(db, "participant = ? AND request_id = ?", participant, request_id)


def _changed(db: Db, settlement_id: str, expected: str) -> SettlementRecord:
    record = get(db, settlement_id)
    if record is None:
        raise LedgerConflict(f"settlement {settlement_id} does not exist")
    if record.state.value != expected:
        raise LedgerConflict(f"settlement {settlement_id} is {record.state.value}, not {expected}")
    return record


def begin(db: Db, r: SettlementRecord) -> None:
    """Record a settlement as PENDING before the region is asked (the durable intent)."""
    columns = [f for f in _FIELDS if f not in ("split", "settled_at", "reversed_at")]
    values = [getattr(r, f) for f in columns]
    values[columns.index("state")] = SettlementState.PENDING.value
    values[columns.index("visit_type")] = r.visit_type.value
    values[columns.index("updated_at")] = r.created_at
    marks = ", ".join("?" * len(columns))
    db.execute(f"INSERT INTO settlements ({', '.join(columns)}) VALUES ({marks})", values)


def drop_pending(db: Db, settlement_id: str) -> None:
    """Forget a PENDING settlement the region refused or never received."""
    db.execute("DELETE FROM settlements WHERE settlement_id = ? AND state = 'PENDING'", (settlement_id,))


def book(db: Db, settlement_id: str, region_settlement_id: str, split: Split, now: float) -> SettlementRecord:
    """PENDING → SETTLED with its clearing entry in the open period."""
    period = open_period(db, now)
    changed = db.execute(
        "UPDATE settlements SET state = 'SETTLED', region_settlement_id = ?, split = ?, fund_pay_fen = ?, "
        "settled_at = ?, period = ?, updated_at = ? WHERE settlement_id = ? AND state = 'PENDING'",
        (region_settlement_id, json.dumps(vars(split)), split.fund_pay_fen, now, period, now, settlement_id),
    ).rowcount
    if not changed:
        raise LedgerConflict(f"settlement {settlement_id} is not PENDING")
    record = _changed(db, settlement_id, "SETTLED")
    _book(db, record, "SETTLE", period, now, +1)
    return record


def begin_reversal(db: Db, settlement_id: str, reversal_request_id: str, reason: str, now: float) -> SettlementRecord:
    """SETTLED → REVERSING, naming the reversal's message id (the durable intent of the reversal); the same
    reversal again finds its intent."""
    db.execute(
        "UPDATE settlements SET state = 'REVERSING', reversal_request_id = ?, reversal_reason = ?, updated_at = ? "
        "WHERE settlement_id = ? AND state = 'SETTLED'",
        (reversal_request_id, reason, now, settlement_id),
    )
    record = _changed(db, settlement_id, "REVERSING")
    if record.reversal_request_id != reversal_request_id:
        raise LedgerConflict(f"settlement {settlement_id} is being reversed by another request")
    return record


def cancel_reversal(db: Db, settlement_id: str, now: float) -> SettlementRecord:
    """REVERSING → SETTLED: the region refused the reversal, or provably never got it."""
    intent = _changed(db, settlement_id, "REVERSING")
    db.execute("DELETE FROM outbox WHERE kind = ? AND item_key = ?", (REVERSAL, intent.reversal_request_id))
    db.execute(
        "UPDATE settlements SET state = 'SETTLED', reversal_request_id = '', reversal_reason = '', updated_at = ? "
        "WHERE settlement_id = ?",
        (now, settlement_id),
    )
    return _changed(db, settlement_id, "SETTLED")


def book_reversal(db: Db, settlement_id: str, now: float) -> SettlementRecord:
    """REVERSING → REVERSED with a negative clearing entry in the period open now; its outbox item is done."""
    period = open_period(db, now)
    before = _changed(db, settlement_id, "REVERSING")
    db.execute(
        "UPDATE settlements SET state = 'REVERSED', reversed_at = ?, reversal_period = ?, updated_at = ? "
        "WHERE settlement_id = ? AND state = 'REVERSING'",
        (now, period, now, settlement_id),
    )
    db.execute(
        "UPDATE outbox SET delivered_at = ? WHERE kind = ? AND item_key = ? AND delivered_at IS NULL",
        (now, REVERSAL, before.reversal_request_id),
    )
    record = _changed(db, settlement_id, "REVERSED")
    _book(db, record, "REVERSE", period, now, -1)
    return record


def queue_reversal(db: Db, settlement_id: str, payload: str, now: float) -> SettlementRecord:
    """Hand a REVERSING settlement's reversal to the outbox, delivered until the region answers."""
    record = _changed(db, settlement_id, "REVERSING")
    outbox.enqueue(db, REVERSAL, record.reversal_request_id, record.insured_region, now, payload)
    return record


def _book(db: Db, r: SettlementRecord, kind: str, period: str, now: float, sign: int) -> None:
    assert r.split is not None
    insured, treatment = r.insured_area[:2], r.treatment_area[:2]
    db.execute(
        "INSERT INTO bookings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (r.settlement_id, kind, period, day_of(now), insured, treatment, r.treatment_area, sign,
         sign * r.split.fund_pay_fen, r.participant),
    )  # fmt: skip
    add_to_totals(db, period, insured, treatment, sign, sign * r.split.fund_pay_fen)


def void(db: Db, settlement_id: str, reason: str, now: float) -> SettlementRecord:
    """PENDING → CORRECTION_PENDING with its correction queued in the outbox."""
    db.execute(
        "UPDATE settlements SET state = 'CORRECTION_PENDING', void_reason = ?, updated_at = ? "
        "WHERE settlement_id = ? AND state = 'PENDING'",
        (reason, now, settlement_id),
    )
    record = _changed(db, settlement_id, "CORRECTION_PENDING")
    outbox.enqueue(db, CORRECTION, record.region_request_id, record.insured_region, now)
    return record


def corrected(db: Db, region_request_id: str) -> None:
    """A delivered correction (keyed on the region's message id) makes its settlement CORRECTED."""
    db.execute(
        "UPDATE settlements SET state = 'CORRECTED' WHERE region_request_id = ? AND state = 'CORRECTION_PENDING'",
        (region_request_id,),
    )


def by_reversal(db: Db, reversal_request_id: str) -> SettlementRecord | None:
    return _one(db, "reversal_request_id = ? AND reversal_request_id != ''", reversal_request_id)


def claim_unresolved(db: Db, changed_before: float, limit: int, replica: str, now: float) -> list[SettlementRecord]:
    """Claim for ``replica`` the PENDING rows, and REVERSING rows whose reversal is not in the outbox, unchanged
    since ``changed_before``: each is leased to it (``leased_by``, ``updated_at`` now), so no other replica takes
    it before the lease is over again."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM settlements WHERE state IN (?, ?) AND updated_at < ? "
        "AND NOT EXISTS (SELECT 1 FROM outbox WHERE kind = ? AND item_key = settlements.reversal_request_id "
        f"AND delivered_at IS NULL) ORDER BY updated_at LIMIT ?{locking(db, skip=True)}",
        (*_UNRESOLVED, changed_before, REVERSAL, limit),
    ).fetchall()
    claimed = [_record(row) for row in rows]
    for record in claimed:
        db.execute(
            "UPDATE settlements SET leased_by = ?, updated_at = ? WHERE settlement_id = ?",
            (replica, now, record.settlement_id),
        )
    return claimed


def owed_to_person(db: Db, person_key: str, region: str) -> list[OutboxItem]:
    """The corrections and reversals still owed to a region for one person's settlements."""
    rows = db.execute(
        "SELECT o.kind, o.item_key, o.region, o.payload, o.created_at, o.attempts FROM outbox o "
        "JOIN settlements s ON (o.kind = ? AND o.item_key = s.region_request_id) "
        "OR (o.kind = ? AND o.item_key = s.reversal_request_id) "
        "WHERE s.person_key = ? AND s.insured_region = ? AND o.delivered_at IS NULL ORDER BY o.created_at",
        (CORRECTION, REVERSAL, person_key, region),
    ).fetchall()
    return [OutboxItem(*row) for row in rows]
