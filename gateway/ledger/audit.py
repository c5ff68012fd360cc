"""The audit chain (DESIGN §11): one record per state change, each hashing the one before, with signed checkpoints.

A record is appended inside the transaction of the change it records, so there is no change without its record
and no record without its change. Its ``hash`` is the SHA-256 of the canonical JSON of every other field,
``prev`` included; the first record's ``prev`` is 64 zeros. Checkpoints sign ``(seq, head hash, time)`` with the
hub's Ed25519 key, so a chain rewritten from some record on — every later hash recomputed — still disagrees with
a checkpoint. Personal numbers appear only as keyed hashes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from gateway import canonical
from gateway.ledger.worker import SERIAL, Db, serialize

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """What a state change says of itself; the ledger adds the sequence number, time and hashes.

    Attributes:
        participant: who asked (``hub`` for the hub's own work: outbox, sweeper).
        method: the RPC (or the hub's own step, e.g. ``Outbox/CORRECTION``).
        request_id: the caller's request id (or the item's key).
        outcome: the gRPC status code name the change ended with (``OK`` for a change made).
        reason: what happened (a state such as ``SETTLED``, or the refusal's reason).
        objects: the ids concerned (``settlement_id``, ``period``, ``region``, …).
        amounts: money in fen (``fund_pay_fen``, …).
        persons: keyed hashes of the personal numbers involved, never the numbers.
    """

    participant: str
    method: str
    request_id: str
    outcome: str
    reason: str
    objects: dict[str, str] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)
    persons: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditRecord:
    """One record of the chain."""

    seq: int
    at: float
    entry: AuditEntry
    prev: str
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head: str
    at: float
    key_id: str
    signature: str


def record_hash(seq: int, at: float, entry: AuditEntry, prev: str) -> str:
    """The hash of a record: SHA-256 of the canonical JSON of its fields and the previous hash."""
    body = {"seq": seq, "at": at, "entry": canonical.to_json(entry), "prev": prev}
    return hashlib.sha256(canonical.encode(body)).hexdigest()


def head(db: Db) -> tuple[int, str]:
    """``(seq, hash)`` of the last record (``(0, GENESIS)`` for an empty chain)."""
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def append(db: Db, entry: AuditEntry, now: float) -> AuditRecord:
    """Add a record after the head, in the caller's transaction; replicas append in one serial order (the
    transaction holds the chain's lock until it commits; the worker took it first, for a job marked serial)."""
    serialize(db, SERIAL)
    seq, prev = head(db)
    seq += 1
    digest = record_hash(seq, now, entry, prev)
    db.execute(
        "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, now, entry.participant, entry.method, entry.request_id, entry.outcome, entry.reason,
         json.dumps(entry.objects, sort_keys=True), json.dumps(entry.amounts, sort_keys=True),
         json.dumps(list(entry.persons)), prev, digest),
    )  # fmt: skip
    return AuditRecord(seq, now, entry, prev, digest)


def _record(row: tuple[Any, ...]) -> AuditRecord:
    seq, at, participant, method, request_id, outcome, reason, objects, amounts, persons, prev, digest = row
    entry = AuditEntry(
        participant, method, request_id, outcome, reason, json.loads(objects), json.loads(amounts),
        tuple(json.loads(persons)),
    )  # fmt: skip
    return AuditRecord(int(seq), float(at), entry, str(prev), str(digest))


def records(db: Db, after: int, limit: int) -> list[AuditRecord]:
    """Records with a sequence number above ``after``, in order."""
    rows = db.execute("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()
    return [_record(row) for row in rows]


def last(db: Db, count: int) -> list[AuditRecord]:
    rows = db.execute("SELECT * FROM audit ORDER BY seq DESC LIMIT ?", (count,)).fetchall()
    return [_record(row) for row in reversed(rows)]


def about(db: Db, key: str, value: str) -> list[AuditRecord]:
    """Records naming an object, e.g. ``("settlement_id", "stl-…")``."""
    rows = db.execute("SELECT * FROM audit WHERE objects LIKE ? ORDER BY seq", (f'%"{key}": "{value}"%',)).fetchall()
    return [_record(row) for row in rows]


def add_checkpoint(db: Db, checkpoint: Checkpoint) -> None:
    db.execute(
        "INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING",
        (checkpoint.seq, checkpoint.head, checkpoint.at, checkpoint.key_id, checkpoint.signature),
    )


def checkpoints(db: Db) -> list[Checkpoint]:
    rows = db.execute("SELECT seq, head, at, key_id, signature FROM audit_checkpoints ORDER BY seq").fetchall()
    return [Checkpoint(int(s), str(h), float(a), str(k), str(g)) for s, h, a, k, g in rows]


def last_checkpoint(db: Db) -> Checkpoint | None:
    found = db.execute(
        "SELECT seq, head, at, key_id, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return Checkpoint(int(found[0]), str(found[1]), float(found[2]), str(found[3]), str(found[4])) if found else None
