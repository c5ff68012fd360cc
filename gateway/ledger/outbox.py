"""The durable outbox (DESIGN §4.5, §4.7): messages the hub owes regions, kept until acknowledged."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from gateway.ledger.records import PRIORITY, OutboxItem
from gateway.ledger.worker import Db, locking

_ITEM = "kind, item_key, region, payload, created_at, attempts"


def enqueue(db: Db, kind: str, key: str, region: str, now: float, payload: str = "") -> None:
    """Queue an item (a repeat of the same kind and key is ignored)."""
    db.execute(
        "INSERT INTO outbox (kind, item_key, region, payload, created_at, next_attempt_at, priority) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, item_key) DO NOTHING",
        (kind, key, region, payload, now, now, PRIORITY[kind]),
    )


_DUE = "delivered_at IS NULL AND next_attempt_at <= ? AND claim_until <= ?"


def claim_due(
    db: Db, now: float, per_region: int, replica: str, lease_seconds: float, skip: Collection[str] = ()
) -> list[OutboxItem]:
    """Claim for ``replica`` up to ``per_region`` due items of each region but those in ``skip`` (backed off) —
    money (corrections, reversals) before advices, oldest first — so one region's backlog never takes another's
    turn. An item claimed by another replica is not due until that replica's lease is over; rows another
    transaction holds are passed over."""
    regions = db.execute(f"SELECT DISTINCT region FROM outbox WHERE {_DUE}", (now, now)).fetchall()
    claimed: list[OutboxItem] = []
    for (region,) in sorted(r for r in regions if r[0] not in skip):
        rows = db.execute(
            f"SELECT {_ITEM} FROM outbox WHERE region = ? AND {_DUE} ORDER BY priority, next_attempt_at LIMIT ?"
            f"{locking(db, skip=True)}",
            (region, now, now, per_region),
        ).fetchall()
        for row in rows:
            db.execute(
                "UPDATE outbox SET claimed_by = ?, claim_until = ? WHERE kind = ? AND item_key = ?",
                (replica, now + lease_seconds, row[0], row[1]),
            )
            claimed.append(OutboxItem(*row))
    return claimed


def unclaim(db: Db, items: Sequence[OutboxItem]) -> None:
    """Free claimed items that were not tried (their region failed first): due again at once for anyone."""
    for item in items:
        db.execute("UPDATE outbox SET claim_until = 0 WHERE kind = ? AND item_key = ?", (item.kind, item.key))


def release_claims(db: Db) -> None:
    """Free every claim (a process on its own ledger starting: whoever claimed them is gone)."""
    db.execute("UPDATE outbox SET claim_until = 0 WHERE delivered_at IS NULL AND claim_until > 0")


def get(db: Db, kind: str, key: str) -> OutboxItem | None:
    row = db.execute(f"SELECT {_ITEM} FROM outbox WHERE kind = ? AND item_key = ?", (kind, key)).fetchone()
    return OutboxItem(*row) if row else None


def delivered(db: Db, item: OutboxItem, now: float) -> None:
    db.execute(
        "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, claim_until = 0 WHERE kind = ? AND item_key = ?",
        (now, item.kind, item.key),
    )


def failed(db: Db, item: OutboxItem, error: str, retry_at: float) -> None:
    db.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, claim_until = 0 "
        "WHERE kind = ? AND item_key = ?",
        (error[:500], retry_at, item.kind, item.key),
    )


def backlog(db: Db) -> list[tuple[str, str, int, float]]:
    """``(region, kind, items waiting, when the oldest was queued)`` of every region and kind with a backlog."""
    rows = db.execute(
        "SELECT region, kind, COUNT(*), MIN(created_at) FROM outbox WHERE delivered_at IS NULL "
        "GROUP BY region, kind ORDER BY region, kind"
    ).fetchall()
    return [(str(r), str(k), int(n), float(t)) for r, k, n, t in rows]


def prune(db: Db, delivered_before: float) -> int:
    """Forget items delivered before that moment; how many."""
    return db.execute("DELETE FROM outbox WHERE delivered_at < ?", (delivered_before,)).rowcount
