"""The durable outbox (DESIGN §4.5, §4.7): messages the hub owes regions, kept until acknowledged."""

from __future__ import annotations

from gateway.ledger.records import OutboxItem
from gateway.ledger.worker import Db


def enqueue(db: Db, kind: str, key: str, region: str, now: float, payload: str = "") -> None:
    """Queue an item (a repeat of the same kind and key is ignored)."""
    db.execute(
        "INSERT INTO outbox (kind, item_key, region, payload, created_at, next_attempt_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, item_key) DO NOTHING",
        (kind, key, region, payload, now, now),
    )


def due(db: Db, now: float, limit: int) -> list[OutboxItem]:
    rows = db.execute(
        "SELECT kind, item_key, region, payload, created_at, attempts FROM outbox "
        "WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
        (now, limit),
    ).fetchall()
    return [OutboxItem(*row) for row in rows]


def delivered(db: Db, item: OutboxItem, now: float) -> None:
    db.execute(
        "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE kind = ? AND item_key = ?",
        (now, item.kind, item.key),
    )


def failed(db: Db, item: OutboxItem, error: str, retry_at: float) -> None:
    db.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
        "WHERE kind = ? AND item_key = ?",
        (error[:500], retry_at, item.kind, item.key),
    )


def backlog(db: Db) -> tuple[int, float | None]:
    """How many items wait for delivery, and when the oldest was queued."""
    count, oldest = db.execute("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE delivered_at IS NULL").fetchone()
    return int(count), oldest
