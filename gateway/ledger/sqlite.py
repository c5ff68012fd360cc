"""The embedded ledger store: one SQLite file in WAL mode with ``synchronous=FULL``.

The schema is versioned (``gateway.ledger.schema``): pending migrations run in order when the worker opens the
connection, each in a transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from gateway.ledger.schema import MIGRATIONS
from gateway.ledger.store import Ledger
from gateway.ledger.worker import ConnectionWorker, Db


def connect(path: Path, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """Open (creating) the ledger file and bring its schema up to date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Run the pending migrations; returns the schema version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    version = row[0] if row else 0
    if row is None:
        conn.execute("INSERT INTO schema_version VALUES (0)")
    for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (target,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return len(MIGRATIONS)


class SqliteLedger(Ledger):
    """The embedded ledger: one SQLite file, one worker thread with group commit.

    Args:
        path: the database file; its folder is created.
        lease_seconds: see :class:`~gateway.ledger.store.Ledger`.
        clock: wall clock, injectable for tests.
        busy_timeout_ms: how long a statement waits for another process's lock before the ledger is unavailable.
        on_commit: told the number of write operations each commit carried.
    """

    def __init__(
        self,
        path: Path,
        *,
        lease_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        busy_timeout_ms: int = 5000,
        on_commit: Callable[[int], None] = lambda operations: None,
    ) -> None:
        self.path = path

        def opened() -> Db:
            return connect(path, busy_timeout_ms)

        worker = ConnectionWorker(opened, (sqlite3.Error,), begin="BEGIN IMMEDIATE", on_commit=on_commit)
        super().__init__(worker, lease_seconds=lease_seconds, clock=clock)
