"""The machine's PostgreSQL for tests of the PostgreSQL store: a fresh schema per test (or per run, emptied before
each test), dropped afterwards.

Where no server answers (a laptop without one) those tests skip, saying so; in CI, where ``.ci/run`` sets
``YIKATONG_REQUIRE_POSTGRES=1``, they fail instead.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

SERVER = os.environ.get("YIKATONG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def _reachable() -> str:
    """ "" when the server answers, else why not."""
    import psycopg

    try:
        with psycopg.connect(SERVER, connect_timeout=3):
            return ""
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def require() -> None:
    """Skip the test (or, in CI, fail it) when no PostgreSQL answers."""
    problem = _reachable()
    if not problem:
        return
    message = f"no PostgreSQL at {SERVER} ({problem}): the PostgreSQL store's tests cannot run"
    if os.environ.get("YIKATONG_REQUIRE_POSTGRES"):
        pytest.fail(message + " — and YIKATONG_REQUIRE_POSTGRES is set (CI)")
    pytest.skip(message + "; set YIKATONG_TEST_POSTGRES to a server to run them")


def url_in(schema: str) -> str:
    """The server's URL with ``schema`` first on the search path."""
    separator = "&" if "?" in SERVER else "?"
    return f"{SERVER}{separator}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A new, empty schema for one test; the URL that uses it. Dropped afterwards."""
    import psycopg

    require()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield url_in(schema)
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def emptied(url: str) -> str:
    """The ledger at ``url`` migrated and with no row left in it; ``url``. Emptying a schema kept for the whole run
    costs a few milliseconds, where a new one costs the migrations' ~50 ms of DDL."""
    import psycopg

    from gateway.ledger.postgres import migrate

    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_version'"
        ).fetchall()
        with conn.transaction():
            for (table,) in tables:
                conn.execute(f"DELETE FROM {table}")
    return url
