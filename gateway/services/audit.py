"""The audit trail (DESIGN §11): who did what to which settlement, and proof that nobody edited it since.

Services describe each state change with :meth:`Auditor.entry` (personal numbers become keyed hashes) and hand
it to the ledger operation that makes the change, which appends the record in the same transaction
(``gateway.ledger.audit``). Changes with no ledger row of their own — a card event, a refused write — are
appended on their own. Every ``every_records`` records or ``every_seconds`` seconds the auditor signs a
checkpoint of the head with the hub's Ed25519 key (``audit.key`` in the data directory, created owner-only on
first start). :func:`verify` recomputes the chain and the checkpoints and names the first bad record.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from adapters.errors import YikatongError
from gateway import canonical
from gateway.ledger import LedgerStore
from gateway.ledger.audit import GENESIS, AuditEntry, AuditRecord, Checkpoint, record_hash
from gateway.metrics import Metrics
from gateway.personal import KeyedHash, create_key_file
from gateway.services.call import Call

log = logging.getLogger("yikatong.audit")
HUB = "hub"  # the participant of the hub's own work: the outbox, the sweeper


def outcome_of(error: YikatongError) -> str:
    """An error's outcome in the audit chain: REFUSED for a definite answer, FAILED otherwise."""
    return "REFUSED" if error.definite else "FAILED"


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The hub's audit key, created (owner-only) on first use."""
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        create_key_file(path, pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).decode()[:16]


def _signed(seq: int, head: str, at: float) -> bytes:
    return canonical.encode({"seq": seq, "head": head, "at": at})


class Auditor:
    """Builds audit entries and signs checkpoints (module docstring).

    Args:
        ledger: where records and checkpoints are kept.
        key: the hub's signing key.
        persons: the keyed hash personal numbers become.
        metrics: records appended, last checkpoint age.
        clock: wall time.
        every_records: a checkpoint after this many records ...
        every_seconds: ... or this long after the last one, when records came since.
    """

    def __init__(
        self,
        ledger: LedgerStore,
        key: Ed25519PrivateKey,
        persons: KeyedHash,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        *,
        every_records: int = 100,
        every_seconds: float = 60.0,
    ) -> None:
        self.ledger, self.key, self.persons, self.metrics, self.clock = ledger, key, persons, metrics, clock
        self.every_records, self.every_seconds = every_records, every_seconds
        self.key_id = key_id(key.public_key())
        self._task: asyncio.Task[None] | None = None
        self._seen = 0

    def entry(
        self,
        call: Call,
        outcome: str,
        reason: str,
        *,
        objects: dict[str, str] | None = None,
        amounts: dict[str, int] | None = None,
        numbers: Iterable[str] = (),
    ) -> AuditEntry:
        """What the call changed; ``numbers`` are personal numbers, kept only as keyed hashes."""
        participant = call.participant if call.method else HUB
        method = call.method.rsplit("/", 1)[-1] if call.method else "hub"
        return AuditEntry(
            participant,
            method,
            call.request_id,
            outcome,
            reason,
            dict(objects or {}),
            dict(amounts or {}),
            tuple(self.persons(n) for n in numbers if n),
        )

    def hub_entry(self, step: str, key: str, outcome: str, reason: str, *, objects: dict[str, str]) -> AuditEntry:
        """A change the hub made on its own (``step`` e.g. ``Outbox/CORRECTION``)."""
        return AuditEntry(HUB, step, key, outcome, reason, objects)

    async def append(self, entry: AuditEntry) -> None:
        """A record for a change with no ledger row of its own."""
        await self.ledger.append_audit(entry, self.clock())

    async def checkpoint(self, *, force: bool = False) -> Checkpoint | None:
        """Sign the head when enough has happened since the last checkpoint (or ``force``); the new checkpoint."""
        seq, head = await self.ledger.audit_head()
        last = await self.ledger.last_checkpoint()
        now = self.clock()
        self._count(seq, now, last)
        last_seq, last_at = (last.seq, last.at) if last else (0, 0.0)
        due = seq - last_seq >= self.every_records or now - last_at >= self.every_seconds
        if seq == last_seq or not (force or due):
            return None
        signature = base64.b64encode(self.key.sign(_signed(seq, head, now))).decode()
        made = Checkpoint(seq, head, now, self.key_id, signature)
        await self.ledger.add_checkpoint(made)
        self.metrics.audit_checkpoint_age.set(0)
        return made

    def _count(self, seq: int, now: float, last: Checkpoint | None) -> None:
        if seq > self._seen:
            self.metrics.audit_records.inc(seq - max(self._seen, 0))
        self._seen = seq
        self.metrics.audit_checkpoint_age.set(now - last.at if last is not None else 0.0)

    def start(self, poll_seconds: float = 1.0) -> None:
        self._task = asyncio.create_task(self._run(poll_seconds))

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            with contextlib.suppress(Exception):
                await self.checkpoint(force=True)  # the chain ends signed

    async def _run(self, poll_seconds: float) -> None:
        while True:
            try:
                await self.checkpoint()
            except Exception:  # keep checkpointing through a bad round (e.g. a locked database)
                log.exception("audit checkpoint failed")
            await asyncio.sleep(poll_seconds)


@dataclass(frozen=True)
class Verdict:
    """What :func:`verify` found: ``bad_seq`` 0 when the chain holds."""

    count: int
    head: str
    bad_seq: int = 0
    problem: str = ""


def verify(records: Iterable[AuditRecord], checkpoints: Sequence[Checkpoint], public: Ed25519PublicKey) -> Verdict:
    """Recompute every hash and link, and check every checkpoint's signature and head (module docstring)."""
    expected, prev, count = 1, GENESIS, 0
    hashes: dict[int, str] = {}
    for record in records:
        if record.seq != expected:
            return Verdict(count, prev, expected, f"record {expected} is missing (the next is {record.seq})")
        if record.prev != prev:
            return Verdict(count, prev, record.seq, "its link to the record before does not match")
        if record_hash(record.seq, record.at, record.entry, record.prev) != record.hash:
            return Verdict(count, prev, record.seq, "its content does not match its hash (edited)")
        prev, expected, count = record.hash, expected + 1, count + 1
        hashes[record.seq] = record.hash
    for checkpoint in checkpoints:
        try:
            public.verify(
                base64.b64decode(checkpoint.signature), _signed(checkpoint.seq, checkpoint.head, checkpoint.at)
            )
        except (InvalidSignature, ValueError):
            return Verdict(count, prev, checkpoint.seq, "the checkpoint's signature does not verify")
        if checkpoint.seq not in hashes:
            return Verdict(count, prev, checkpoint.seq, f"record {checkpoint.seq}, signed by a checkpoint, is gone")
        if hashes[checkpoint.seq] != checkpoint.head:
            return Verdict(count, prev, checkpoint.seq, "the chain differs from what the checkpoint signed")
    return Verdict(count, prev)
