"""Idempotency records (DESIGN §6, §10): one row per (participant, method, request id) with the request's
fingerprint and its outcome."""

from __future__ import annotations

from gateway.ledger.records import Claim, ClaimResult, RequestKey
from gateway.ledger.worker import Db, locking

_KEY = "participant = ? AND method = ? AND request_id = ?"


def _key(key: RequestKey) -> tuple[str, str, str]:
    return key.participant, key.method, key.request_id


def claim(db: Db, key: RequestKey, fingerprint: str, now: float, lease_seconds: float) -> ClaimResult:
    """Claim a request id, or say what it holds; an IN_PROGRESS claim older than the lease is taken over.

    The insert decides on the unique key, so of concurrent claims — from any replica — exactly one is NEW.
    """
    inserted = db.execute(
        "INSERT INTO idempotency VALUES (?, ?, ?, ?, 'IN_PROGRESS', ?, NULL) "
        "ON CONFLICT (participant, method, request_id) DO NOTHING",
        (*_key(key), fingerprint, now),
    ).rowcount
    if inserted:
        return ClaimResult(Claim.NEW)
    row = db.execute(
        f"SELECT fingerprint, state, started_at, outcome FROM idempotency WHERE {_KEY}{locking(db)}",
        _key(key),
    ).fetchone()
    stored_fingerprint, state, started_at, outcome = row
    if stored_fingerprint != fingerprint:
        return ClaimResult(Claim.MISMATCH)
    if state == "DONE":
        return ClaimResult(Claim.REPLAY, bytes(outcome))
    if now - started_at > lease_seconds:
        db.execute(f"UPDATE idempotency SET started_at = ? WHERE {_KEY}", (now, *_key(key)))
        return ClaimResult(Claim.NEW)
    return ClaimResult(Claim.IN_PROGRESS)


def complete(db: Db, key: RequestKey, outcome: bytes) -> None:
    db.execute(f"UPDATE idempotency SET state = 'DONE', outcome = ? WHERE {_KEY}", (outcome, *_key(key)))


def release(db: Db, key: RequestKey) -> None:
    db.execute(f"DELETE FROM idempotency WHERE {_KEY} AND state = 'IN_PROGRESS'", _key(key))


def prune(db: Db, finished_before: float) -> int:
    """Forget finished records older than that moment (their retries re-run; the regions deduplicate); how many."""
    return db.execute("DELETE FROM idempotency WHERE state = 'DONE' AND started_at < ?", (finished_before,)).rowcount


def finished(db: Db, key: RequestKey, fingerprint: str) -> ClaimResult | None:
    """What a finished request holds (REPLAY, or MISMATCH for another request); None when not finished. Read only."""
    row = db.execute(f"SELECT fingerprint, state, outcome FROM idempotency WHERE {_KEY}", _key(key)).fetchone()
    if row is None or row[1] != "DONE":
        return None
    return ClaimResult(Claim.REPLAY, bytes(row[2])) if row[0] == fingerprint else ClaimResult(Claim.MISMATCH)
