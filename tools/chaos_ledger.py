"""The hub's ledger as a chaos run (``tools/chaos.py``) reads it: the data folder's SQLite file for a single hub, or
the PostgreSQL schema the replicas share (:class:`LedgerSource`). Both give the same columns, turned into the checks'
:class:`~tools.chaos_checks.LedgerRow` by one function, so the checks have one code path whatever the store. While
the hub drains, the run asks which rows are still unfinished; the rows it checks are read once the hub has stopped.

A run with replicas gets a schema of its own, ``chaos_<seed>_<time>``, created empty before the first replica
starts (the hub migrates it) and put first on the search path by the ledger URL's ``options``, as
``tests/postgres.py`` does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tools.chaos_checks import UNFINISHED, LedgerRow, Money

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


@dataclass(frozen=True)
class LedgerSource:
    """Where the hub's ledger is: ``url``, the PostgreSQL schema replicas share, or else the SQLite file ``path``
    (opened read-only: the hub may still be writing it)."""

    url: str | None
    path: Path

    def fetch(self, query: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """``query``'s rows (written with SQLite's ``?`` placeholders)."""
        if self.url:
            with psycopg.connect(self.url, connect_timeout=10) as conn:
                return conn.execute(query.replace("?", "%s"), parameters).fetchall()
        with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)) as db:
            return db.execute(query, parameters).fetchall()

    def rows(self) -> list[LedgerRow]:
        """Every settlement row, as the checks read them."""
        return ledger_rows(self.fetch(QUERY))

    def unfinished(self) -> list[str]:
        """The rows still in a state the drain waits out (e.g. PENDING, claimed by a replica a kill took down until
        its lease ends), as ``request_id (STATE)``."""
        marks = ", ".join("?" * len(UNFINISHED))
        found = self.fetch(f"SELECT request_id, state FROM settlements WHERE state IN ({marks})", UNFINISHED)
        return [f"{request_id} (ledger {state})" for request_id, state in sorted(found)]


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
