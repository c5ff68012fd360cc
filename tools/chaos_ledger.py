"""The hub's ledger as a chaos run (``tools/chaos.py``) reads it once the hub has stopped: the data folder's SQLite
file for a single hub, or the PostgreSQL schema the replicas share. Both give the same columns, turned into the
checks' :class:`~tools.chaos_checks.LedgerRow` by one function, so the checks have one code path whatever the store.

A run with replicas gets a schema of its own, ``chaos_<seed>_<time>``, created empty before the first replica
starts (the hub migrates it) and put first on the search path by the ledger URL's ``options``, as
``tests/postgres.py`` does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tools.chaos_checks import LedgerRow, Money

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
QUERY = "SELECT settlement_id, participant, request_id, region_request_id, state, split, period FROM settlements"


def ledger_rows(rows: Iterable[Sequence[Any]]) -> list[LedgerRow]:
    """The checks' rows from :data:`QUERY`'s (``split`` is the split's JSON, "" before the region answered)."""
    found = []
    for settlement_id, _participant, request_id, region_request_id, state, split, period in rows:
        parts = json.loads(split) if split else None
        money = (
            Money(parts["deductible_fen"], parts["fund_pay_fen"], parts["account_pay_fen"], parts["cash_pay_fen"])
            if parts
            else None
        )
        found.append(LedgerRow(settlement_id, request_id, region_request_id, state, money, period))
    return found


def read_sqlite(path: Path) -> list[LedgerRow]:
    """A single hub's settlement rows, from its SQLite file."""
    with closing(sqlite3.connect(path)) as conn:
        return ledger_rows(conn.execute(QUERY).fetchall())


def read_postgres(url: str) -> list[LedgerRow]:
    """The replicas' settlement rows, from the schema ``url`` puts first on the search path."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        return ledger_rows(conn.execute(QUERY).fetchall())


def schema_name(seed: int, stamp: str) -> str:
    """A run's schema: ``chaos_<seed>_<stamp>`` with everything but letters and digits made ``_`` (a negative
    seed's sign becomes ``m``), so it needs no quoting."""
    raw = f"chaos_{'m' if seed < 0 else ''}{abs(seed)}_{stamp}"
    return "".join(c if c.isalnum() else "_" for c in raw).lower()


def in_schema(server: str, schema: str) -> str:
    """``server``'s URL with ``schema`` first on the search path."""
    separator = "&" if "?" in server else "?"
    return f"{server}{separator}options=-csearch_path%3D{schema}"


def create_schema(server: str, schema: str) -> None:
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def drop_schema(server: str, schema: str) -> None:
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
