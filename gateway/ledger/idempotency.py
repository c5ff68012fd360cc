"""Idempotency records (DESIGN §6): one row per (method, request id) with the request's fingerprint and outcome."""

from __future__ import annotations

from gateway.ledger.records import Claim, ClaimResult
from gateway.ledger.worker import Db


def claim(db: Db, method: str, request_id: str, fingerprint: str, now: float, lease_seconds: float) -> ClaimResult:
    """Claim a request id, or say what it holds; an IN_PROGRESS claim older than the lease is taken over."""
    row = db.execute(
        "SELECT fingerprint, state, started_at, outcome FROM idempotency WHERE method = ? AND request_id = ?",
        (method, request_id),
    ).fetchone()
    if row is None:
        db.execute(
            "INSERT INTO idempotency VALUES (?, ?, ?, 'IN_PROGRESS', ?, NULL)", (request_id, method, fingerprint, now)
        )
        return ClaimResult(Claim.NEW)
    stored_fingerprint, state, started_at, outcome = row
    if stored_fingerprint != fingerprint:
        return ClaimResult(Claim.MISMATCH)
    if state == "DONE":
        return ClaimResult(Claim.REPLAY, bytes(outcome))
    if now - started_at > lease_seconds:
        db.execute(
            "UPDATE idempotency SET started_at = ? WHERE method = ? AND request_id = ?", (now, method, request_id)
        )
        return ClaimResult(Claim.NEW)
    return ClaimResult(Claim.IN_PROGRESS)


def complete(db: Db, method: str, request_id: str, outcome: bytes) -> None:
    db.execute(
        "UPDATE idempotency SET state = 'DONE', outcome = ? WHERE method = ? AND request_id = ?",
        (outcome, method, request_id),
    )


def release(db: Db, method: str, request_id: str) -> None:
    db.execute(
        "DELETE FROM idempotency WHERE method = ? AND request_id = ? AND state = 'IN_PROGRESS'", (method, request_id)
    )
