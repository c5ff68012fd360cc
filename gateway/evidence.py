"""The audit chain read from a ledger — the data folder's SQLite file, or the replicas' PostgreSQL — for people
(``yikatong audit tail|show``) and for proof (``yikatong audit verify``). Read-only: it may run beside a hub that
is serving."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg

from gateway.config import load_hub_config, with_ledger
from gateway.ledger import audit, postgres
from gateway.ledger.audit import AuditRecord
from gateway.periods import BEIJING
from gateway.services.audit import load_signing_key, verify


class Unreadable(Exception):
    """The ledger is not there, or does not answer."""


@contextlib.contextmanager
def _reading(data_dir: Path, ledger: str | None) -> Iterator[sqlite3.Connection | postgres.PgDb]:
    """The ledger of the data folder's hub file, or the one ``ledger`` names (``sqlite:///…``, ``postgresql://…``)."""
    config = load_hub_config(data_dir=data_dir)
    config = with_ledger(config, ledger) if ledger else config
    if config.ledger_url:
        try:
            options = {"password": config.ledger_password} if config.ledger_password else {}
            pg = postgres.PgDb(postgres.connect(config.ledger_url, **options))
        except psycopg.Error as exc:
            raise Unreadable(f"the ledger does not answer: {str(exc).strip().splitlines()[0]}") from exc
        try:
            pg.conn.read_only = True
            yield pg
        finally:
            pg.close()
        return
    if not config.ledger_path.exists():
        raise Unreadable(f"no ledger at {config.ledger_path}")
    with contextlib.closing(sqlite3.connect(f"file:{config.ledger_path}?mode=ro", uri=True)) as db:
        yield db


def _all(db: sqlite3.Connection | postgres.PgDb) -> Iterator[AuditRecord]:
    after = 0
    while batch := audit.records(db, after, 5000):
        yield from batch
        after = batch[-1].seq


def verify_chain(data_dir: Path, ledger: str | None = None) -> int:
    """Recompute the chain and check the checkpoints; 0 when it holds, 1 naming the first bad record."""
    config = load_hub_config(data_dir=data_dir)
    public = load_signing_key(config.audit_key_file).public_key()
    with _reading(data_dir, ledger) as db:
        checkpoints = audit.checkpoints(db)
        verdict = verify(_all(db), checkpoints, public)
    if verdict.bad_seq:
        print(f"audit chain broken at record {verdict.bad_seq}: {verdict.problem}")
        return 1
    print(f"audit chain holds: {verdict.count} records, head {verdict.head}, {len(checkpoints)} signed checkpoints")
    return 0


def line(record: AuditRecord) -> str:
    """One record as a person reads it."""
    e = record.entry
    at = dt.datetime.fromtimestamp(record.at, BEIJING).isoformat(timespec="seconds")
    objects = " ".join(f"{k}={v}" for k, v in sorted(e.objects.items()))
    amounts = " ".join(f"{k}={v}" for k, v in sorted(e.amounts.items()))
    return f"{record.seq:>7} {at} {e.participant:<28} {e.method:<22} {e.outcome:<8} {e.reason:<26} {objects} {amounts}"


def tail(data_dir: Path, count: int, ledger: str | None = None) -> int:
    with _reading(data_dir, ledger) as db:
        for record in audit.last(db, count):
            print(line(record))
    return 0


def show_settlement(data_dir: Path, settlement_id: str, ledger: str | None = None) -> int:
    with _reading(data_dir, ledger) as db:
        found = audit.about(db, "settlement_id", settlement_id)
    for record in found:
        print(line(record))
    return 0 if found else 1
