"""The embedded ledger store: one SQLite file in WAL mode with ``synchronous=FULL``.

One dedicated worker thread owns the connection, so no database call blocks the event loop. The schema is
versioned (``gateway.schema``): pending migrations run in order at open, each in a transaction.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from adapters.domain import Split, VisitType
from gateway.ledger import (
    CORRECTION,
    Booking,
    Claim,
    ClaimResult,
    LedgerConflict,
    OutboxItem,
    SettlementRecord,
    SettlementState,
)
from gateway.periods import day_of, next_period, period_of
from gateway.schema import MIGRATIONS

T = TypeVar("T")

_SETTLEMENT_COLUMNS = (
    "settlement_id, request_id, state, social_security_number, insured_area, treatment_area, insured_region, "
    "institution_id, visit_type, hospital_level, created_at, region_settlement_id, split, settled_at, period, "
    "reversed_at, reversal_period, void_reason"
)


def _settlement(row: tuple[Any, ...]) -> SettlementRecord:
    values = list(row)
    values[2] = SettlementState(values[2])
    values[8] = VisitType(values[8])
    values[12] = Split(**json.loads(values[12])) if values[12] else None
    return SettlementRecord(*values)


def _open_period(conn: sqlite3.Connection, now: float) -> str:
    """The period a booking made now lands in: this month, or the first later month not closed."""
    period = period_of(now)
    closed = {row[0] for row in conn.execute("SELECT period FROM clearing_periods WHERE period >= ?", (period,))}
    while period in closed:
        period = next_period(period)
    return period


class SqliteLedger:
    """The embedded ledger: one SQLite file, one worker thread.

    Args:
        path: the database file; its folder is created.
        lease_seconds: an IN_PROGRESS record older than this is taken over by the next claim (the first
            owner crashed); the region deduplicates on the same id, so sending again is safe.
        clock: wall clock, injectable for tests.
    """

    def __init__(self, path: Path, *, lease_seconds: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self._conn: sqlite3.Connection | None = None

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    async def open(self) -> None:
        await self._run_raw(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if row is None:
            conn.execute("INSERT INTO schema_version VALUES (0)")
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.execute("BEGIN IMMEDIATE")
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (target,))
            conn.execute("COMMIT")
        self._conn = conn

    async def schema_version(self) -> int:
        return int(await self._run(lambda c: c.execute("SELECT version FROM schema_version").fetchone()[0]))

    async def _run_raw(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise RuntimeError("ledger is not open")
            return fn(self._conn)

        return await self._run_raw(call)

    def _transaction(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def claim(self, method: str, request_id: str, fingerprint: str) -> ClaimResult:
        now = self._clock()

        def claim(conn: sqlite3.Connection) -> ClaimResult:
            row = conn.execute(
                "SELECT fingerprint, state, started_at, outcome FROM idempotency WHERE method = ? AND request_id = ?",
                (method, request_id),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO idempotency VALUES (?, ?, ?, 'IN_PROGRESS', ?, NULL)",
                    (request_id, method, fingerprint, now),
                )
                return ClaimResult(Claim.NEW)
            stored_fingerprint, state, started_at, outcome = row
            if stored_fingerprint != fingerprint:
                return ClaimResult(Claim.MISMATCH)
            if state == "DONE":
                return ClaimResult(Claim.REPLAY, bytes(outcome))
            if now - started_at > self.lease_seconds:
                conn.execute(
                    "UPDATE idempotency SET started_at = ? WHERE method = ? AND request_id = ?",
                    (now, method, request_id),
                )
                return ClaimResult(Claim.NEW)
            return ClaimResult(Claim.IN_PROGRESS)

        return await self._run(lambda c: self._transaction(c, claim))

    async def complete(self, method: str, request_id: str, outcome: bytes) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE idempotency SET state = 'DONE', outcome = ? WHERE method = ? AND request_id = ?",
                (outcome, method, request_id),
            )
        )

    async def release(self, method: str, request_id: str) -> None:
        await self._run(
            lambda c: c.execute(
                "DELETE FROM idempotency WHERE method = ? AND request_id = ? AND state = 'IN_PROGRESS'",
                (method, request_id),
            )
        )

    # --- settlements ---------------------------------------------------------------------------------

    async def begin_settlement(self, record: SettlementRecord) -> None:
        """Record a settlement as PENDING before the region is asked (the durable intent)."""
        await self._run(
            lambda c: c.execute(
                "INSERT INTO settlements (settlement_id, request_id, state, social_security_number, insured_area, "
                "treatment_area, insured_region, institution_id, visit_type, hospital_level, created_at) "
                "VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.settlement_id,
                    record.request_id,
                    record.social_security_number,
                    record.insured_area,
                    record.treatment_area,
                    record.insured_region,
                    record.institution_id,
                    record.visit_type.value,
                    record.hospital_level,
                    record.created_at,
                ),
            )
        )

    async def settlement(self, settlement_id: str) -> SettlementRecord | None:
        return await self._run(lambda c: self._get(c, "settlement_id", settlement_id))

    async def settlement_by_request(self, request_id: str) -> SettlementRecord | None:
        return await self._run(lambda c: self._get(c, "request_id", request_id))

    @staticmethod
    def _get(conn: sqlite3.Connection, column: str, value: str) -> SettlementRecord | None:
        row = conn.execute(f"SELECT {_SETTLEMENT_COLUMNS} FROM settlements WHERE {column} = ?", (value,)).fetchone()
        return _settlement(row) if row else None

    async def drop_pending(self, settlement_id: str) -> None:
        """Forget a PENDING settlement the region refused or never received."""
        await self._run(
            lambda c: c.execute(
                "DELETE FROM settlements WHERE settlement_id = ? AND state = 'PENDING'", (settlement_id,)
            )
        )

    async def book_settlement(
        self, settlement_id: str, region_settlement_id: str, split: Split, now: float
    ) -> SettlementRecord:
        """PENDING → SETTLED with its clearing entry in the open period, in one transaction."""

        def book(conn: sqlite3.Connection) -> SettlementRecord:
            period = _open_period(conn, now)
            changed = conn.execute(
                "UPDATE settlements SET state = 'SETTLED', region_settlement_id = ?, split = ?, fund_pay_fen = ?, "
                "settled_at = ?, period = ? WHERE settlement_id = ? AND state = 'PENDING'",
                (region_settlement_id, json.dumps(vars(split)), split.fund_pay_fen, now, period, settlement_id),
            ).rowcount
            record = self._get(conn, "settlement_id", settlement_id)
            if record is None or not changed:
                raise LedgerConflict(f"settlement {settlement_id} is not PENDING")
            self._book(conn, record, "SETTLE", period, now, +1)
            return record

        return await self._run(lambda c: self._transaction(c, book))

    async def book_reversal(self, settlement_id: str, now: float) -> SettlementRecord:
        """SETTLED → REVERSED with a negative clearing entry in the period open now, in one transaction."""

        def reverse(conn: sqlite3.Connection) -> SettlementRecord:
            period = _open_period(conn, now)
            changed = conn.execute(
                "UPDATE settlements SET state = 'REVERSED', reversed_at = ?, reversal_period = ? "
                "WHERE settlement_id = ? AND state = 'SETTLED'",
                (now, period, settlement_id),
            ).rowcount
            record = self._get(conn, "settlement_id", settlement_id)
            if record is None or not changed:
                raise LedgerConflict(f"settlement {settlement_id} is not SETTLED")
            self._book(conn, record, "REVERSE", period, now, -1)
            return record

        return await self._run(lambda c: self._transaction(c, reverse))

    @staticmethod
    def _book(conn: sqlite3.Connection, r: SettlementRecord, kind: str, period: str, now: float, sign: int) -> None:
        assert r.split is not None
        conn.execute(
            "INSERT INTO bookings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            ),
        )

    async def void_settlement(self, settlement_id: str, reason: str, now: float) -> SettlementRecord:
        """PENDING → CORRECTION_PENDING with its correction queued in the outbox, in one transaction."""

        def void(conn: sqlite3.Connection) -> SettlementRecord:
            conn.execute(
                "UPDATE settlements SET state = 'CORRECTION_PENDING', void_reason = ? "
                "WHERE settlement_id = ? AND state = 'PENDING'",
                (reason, settlement_id),
            )
            record = self._get(conn, "settlement_id", settlement_id)
            if record is None or record.state is not SettlementState.CORRECTION_PENDING:
                raise LedgerConflict(f"settlement {settlement_id} cannot be voided")
            self._enqueue(conn, CORRECTION, record.request_id, record.insured_region, now)
            return record

        return await self._run(lambda c: self._transaction(c, void))

    async def recover_pending(self, now: float) -> list[str]:
        """Void every PENDING settlement left by a crash (its caller never got an answer); their ids."""

        def recover(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT settlement_id, request_id, insured_region FROM settlements WHERE state = 'PENDING'"
            ).fetchall()
            for settlement_id, request_id, region in rows:
                conn.execute(
                    "UPDATE settlements SET state = 'CORRECTION_PENDING', void_reason = ? WHERE settlement_id = ?",
                    ("the hub stopped before the region answered", settlement_id),
                )
                self._enqueue(conn, CORRECTION, request_id, region, now)
            return [row[0] for row in rows]

        return await self._run(lambda c: self._transaction(c, recover))

    # --- the durable outbox --------------------------------------------------------------------------

    @staticmethod
    def _enqueue(conn: sqlite3.Connection, kind: str, key: str, region: str, now: float, payload: str = "") -> None:
        conn.execute(
            "INSERT INTO outbox (kind, item_key, region, payload, created_at, next_attempt_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, item_key) DO NOTHING",
            (kind, key, region, payload, now, now),
        )

    async def enqueue(self, kind: str, key: str, region: str, payload: str, now: float) -> None:
        """Queue an item on its own (a repeat of the same kind and key is ignored)."""
        await self._run(lambda c: self._enqueue(c, kind, key, region, now, payload))

    async def outbox_due(self, now: float, limit: int) -> list[OutboxItem]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT kind, item_key, region, payload, created_at, attempts FROM outbox "
                "WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
                (now, limit),
            ).fetchall()
        )
        return [OutboxItem(*row) for row in rows]

    async def outbox_delivered(self, item: OutboxItem, now: float) -> None:
        """Mark an item acknowledged; a delivered correction makes its settlement CORRECTED."""

        def delivered(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE kind = ? AND item_key = ?",
                (now, item.kind, item.key),
            )
            if item.kind == CORRECTION:
                conn.execute(
                    "UPDATE settlements SET state = 'CORRECTED' WHERE request_id = ? AND state = 'CORRECTION_PENDING'",
                    (item.key,),
                )

        await self._run(lambda c: self._transaction(c, delivered))

    async def outbox_failed(self, item: OutboxItem, error: str, retry_at: float) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                "WHERE kind = ? AND item_key = ?",
                (error[:500], retry_at, item.kind, item.key),
            )
        )

    async def outbox_backlog(self) -> tuple[int, float | None]:
        """How many items wait for delivery, and when the oldest was queued."""
        row = await self._run(
            lambda c: c.execute("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE delivered_at IS NULL").fetchone()
        )
        return int(row[0]), row[1]

    # --- clearing --------------------------------------------------------------------------------------

    async def bookings(self, period: str) -> list[Booking]:
        rows = await self._run(
            lambda c: c.execute("SELECT * FROM bookings WHERE period = ? ORDER BY settlement_id", (period,)).fetchall()
        )
        return [Booking(*row) for row in rows]

    async def bookings_on(self, day: str, treatment_area: str) -> list[Booking]:
        """The bookings of a day for an area, or for a whole province when the area is ``XX0000``."""
        province, whole = treatment_area[:2], treatment_area.endswith("0000")
        rows = await self._run(
            lambda c: c.execute(
                "SELECT * FROM bookings WHERE booked_on = ? AND treatment_province = ? "
                "AND (? OR treatment_area = ?) ORDER BY settlement_id, kind",
                (day, province, whole, treatment_area),
            ).fetchall()
        )
        return [Booking(*row) for row in rows]

    async def closed_report(self, period: str) -> tuple[float, str] | None:
        """``(closed_at, frozen report)`` of a closed period, None while it is open."""
        row = await self._run(
            lambda c: c.execute("SELECT closed_at, report FROM clearing_periods WHERE period = ?", (period,)).fetchone()
        )
        return (float(row[0]), str(row[1])) if row else None

    async def close_period(self, period: str, report: str, now: float) -> tuple[float, str]:
        """Freeze a period with its report; closing a closed period returns what was frozen."""

        def close(conn: sqlite3.Connection) -> tuple[float, str]:
            conn.execute(
                "INSERT INTO clearing_periods VALUES (?, 'CLOSED', ?, ?) ON CONFLICT (period) DO NOTHING",
                (period, now, report),
            )
            row = conn.execute("SELECT closed_at, report FROM clearing_periods WHERE period = ?", (period,)).fetchone()
            return float(row[0]), str(row[1])

        return await self._run(lambda c: self._transaction(c, close))

    # --- e-card tokens ------------------------------------------------------------------------------------

    async def use_token(self, token_id: str, expires_at: float, now: float) -> bool:
        """Mark a token used; False when it was used before. Tokens past their expiry are forgotten."""

        def use(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM ecard_tokens WHERE expires_at < ?", (now,))
            inserted = conn.execute(
                "INSERT INTO ecard_tokens VALUES (?, ?) ON CONFLICT (token_id) DO NOTHING", (token_id, expires_at)
            ).rowcount
            return bool(inserted)

        return await self._run(lambda c: self._transaction(c, use))

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run_raw(close)
        self._executor.shutdown(wait=True)
