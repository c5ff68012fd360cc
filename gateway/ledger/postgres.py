"""The PostgreSQL ledger store, for several hub replicas sharing one ledger (DESIGN §8).

It runs the very operations of the SQLite store (``gateway.ledger.store.Ledger``) on one psycopg 3 connection
per replica, in the same connection worker with group commit, so there is one implementation of the ledger's
SQL and of its durability. psycopg 3 rather than asyncpg for that reason: its DB-API connection is what the
shared operations are written against (with ``?`` placeholders, rewritten here), and its ``LISTEN``/``NOTIFY``
(``gateway.ledger.notify``) needs no second driver.

What differs from SQLite is said by the connection (``PgDb``): row locks for claims (``FOR UPDATE SKIP LOCKED``)
and a transaction lock that puts concurrent transactions in one order (the audit chain). Migrations are the
same list, with SQLite's ``REAL`` and ``BLOB`` written ``DOUBLE PRECISION`` and ``BYTEA``, applied under an
advisory lock so that replicas starting together migrate once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from gateway.ledger.schema import MIGRATIONS
from gateway.ledger.store import Ledger
from gateway.ledger.worker import ConnectionWorker, Cursor, Db

_MIGRATION_LOCK = "yikatong.migrations"
_TYPES = ((re.compile(r"\bREAL\b"), "DOUBLE PRECISION"), (re.compile(r"\bBLOB\b"), "BYTEA"))


class PgDb:
    """A psycopg connection as the ledger's operations use it."""

    for_update = " FOR UPDATE"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._sql: dict[str, str] = {}

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        query = self._sql.get(sql)
        if query is None:
            query = self._sql[sql] = sql.replace("?", "%s")
        return self.conn.execute(query, parameters)

    def lock(self, name: str) -> None:
        """Hold the transaction-long advisory lock ``name`` of this schema's ledger (advisory locks are the
        database's: another ledger in another schema has locks of its own)."""
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()), hashtext(%s))", (name,))

    @property
    def broken(self) -> bool:
        return bool(self.conn.broken)

    def close(self) -> None:
        self.conn.close()


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """A connection in autocommit mode: the worker writes BEGIN and COMMIT itself."""
    return psycopg.connect(url, autocommit=True, **kwargs)


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Run the pending migrations under an advisory lock; returns the schema version."""
    conn.execute("SELECT pg_advisory_lock(hashtext(current_schema()), hashtext(%s))", (_MIGRATION_LOCK,))
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if row is None:
            conn.execute("INSERT INTO schema_version VALUES (0)")
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for pattern, replacement in _TYPES:
                script = pattern.sub(replacement, script)
            with conn.transaction():
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = %s", (target,))
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(current_schema()), hashtext(%s))", (_MIGRATION_LOCK,))
    return len(MIGRATIONS)


class PostgresLedger(Ledger):
    """The ledger in PostgreSQL, shared by every replica.

    Args:
        url: ``postgresql://user@host:port/db`` (libpq's URL or key=value string).
        password: the password, when not in the URL (resolved from its reference by the configuration).
        lease_seconds, clock, replica, outbox_lease_seconds: see :class:`~gateway.ledger.store.Ledger`.
        on_commit: told the number of write operations each commit carried.
    """

    def __init__(
        self,
        url: str,
        *,
        password: str = "",
        lease_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        replica: str = "",
        outbox_lease_seconds: float = 30.0,
        on_commit: Callable[[int], None] = lambda operations: None,
    ) -> None:
        self.url = url
        options = {"password": password} if password else {}

        def opened() -> Db:
            conn = connect(url, **options)
            migrate(conn)
            return PgDb(conn)

        worker = ConnectionWorker(opened, (psycopg.Error,), begin="BEGIN", on_commit=on_commit)
        super().__init__(
            worker,
            lease_seconds=lease_seconds,
            clock=clock,
            replica=replica,
            outbox_lease_seconds=outbox_lease_seconds,
            shared=True,
        )
