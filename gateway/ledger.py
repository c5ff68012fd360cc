"""The hub's ledger: a store interface and its SQLite implementation.

SQLite runs in WAL mode with ``synchronous=FULL`` on one dedicated worker thread that owns the connection,
so no database call blocks the event loop. The schema is versioned: ``MIGRATIONS[i]`` takes the schema from
version ``i`` to ``i + 1`` and runs once, in order, inside a transaction.
"""

from __future__ import annotations

import asyncio
import enum
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

T = TypeVar("T")

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE idempotency (
        request_id  TEXT NOT NULL,
        method      TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('IN_PROGRESS', 'DONE')),
        started_at  REAL NOT NULL,
        outcome     BLOB,
        PRIMARY KEY (method, request_id)
    );
    """,
)


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


class LedgerStore(Protocol):
    """What the hub needs of its ledger; SQLite now, PostgreSQL for several replicas."""

    async def claim(self, method: str, request_id: str, fingerprint: str) -> ClaimResult: ...

    async def complete(self, method: str, request_id: str, outcome: bytes) -> None: ...

    async def release(self, method: str, request_id: str) -> None: ...

    async def close(self) -> None: ...


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

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run_raw(close)
        self._executor.shutdown(wait=True)
