"""Moving an embedded ledger into PostgreSQL (``yikatong ledger copy``), verified before it reports success.

Every table is copied row for row in one transaction into an empty PostgreSQL ledger at the same schema
version; then the row counts of every table and the audit chain's head are compared, and any difference undoes
nothing but is reported as a failure (the destination is left for inspection; copy again into a fresh one).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gateway.ledger import audit, postgres
from gateway.ledger.sqlite import connect as connect_sqlite

TABLES = (
    "idempotency",
    "settlements",
    "bookings",
    "clearing_totals",
    "clearing_periods",
    "outbox",
    "ecard_tokens",
    "audit",
    "audit_checkpoints",
)


class CopyError(Exception):
    """The copy could not be made or does not match its source."""


@dataclass(frozen=True)
class Copied:
    counts: dict[str, int]
    head: tuple[int, str]


def copy(source: Path, destination: str) -> Copied:
    """Copy the SQLite ledger at ``source`` into the empty PostgreSQL ledger at ``destination``; verified.

    Raises:
        CopyError: the destination holds data already, or differs from the source after the copy.
    """
    if not source.exists():
        raise CopyError(f"no SQLite ledger at {source}")
    src = connect_sqlite(source)  # brings it to the current schema version first
    dst = postgres.PgDb(postgres.connect(destination))
    try:
        postgres.migrate(dst.conn)
        if any(dst.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in TABLES):
            raise CopyError("the destination ledger is not empty; copy into a fresh database or schema")
        with dst.conn.transaction():
            for table in TABLES:
                _copy_table(src, dst, table)
        counts = {table: _count(src, table) for table in TABLES}
        theirs = {table: _count(dst, table) for table in TABLES}
        if counts != theirs:
            differing = ", ".join(f"{t} {counts[t]} → {theirs[t]}" for t in TABLES if counts[t] != theirs[t])
            raise CopyError(f"row counts differ after the copy: {differing}")
        head, copied_head = audit.head(src), audit.head(dst)
        if head != copied_head:
            raise CopyError(f"the audit chain's head differs after the copy: {head} → {copied_head}")
        return Copied(counts, head)
    finally:
        src.close()
        dst.close()


def _copy_table(src: sqlite3.Connection, dst: postgres.PgDb, table: str) -> None:
    columns = [row[1] for row in src.execute(f"PRAGMA table_info({table})")]
    names, marks = ", ".join(columns), ", ".join(["%s"] * len(columns))
    rows = src.execute(f"SELECT {names} FROM {table}").fetchall()
    if rows:
        with dst.conn.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def _count(db: sqlite3.Connection | postgres.PgDb, table: str) -> int:
    return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
