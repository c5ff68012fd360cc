"""The store protocol every ledger implements, and :class:`Ledger`, its implementation over a connection worker.

The ledger holds the idempotency records, the settlements with their clearing bookings, the durable outbox, the
closed clearing periods and the used e-card tokens. The SQL lives once per concern (``idempotency``,
``settlements``, ``outbox``, ``clearing``, ``tokens``) as functions of a DB-API connection; :class:`Ledger`
runs them on a :class:`~gateway.ledger.worker.ConnectionWorker`, so a store differs from another only in how it
connects (``gateway.ledger.sqlite``).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol, TypeVar

from adapters.domain import Split
from gateway.ledger import audit as audit_chain
from gateway.ledger import clearing, idempotency, outbox, settlements, tokens
from gateway.ledger.audit import AuditEntry, Checkpoint
from gateway.ledger.records import (
    CORRECTION,
    REVERSAL,
    Booking,
    Claim,
    ClaimResult,
    OutboxItem,
    RequestKey,
    SettlementRecord,
    SettlementState,
    Started,
)
from gateway.ledger.settlements import LedgerConflict
from gateway.ledger.worker import ConnectionWorker, Db

Completion = tuple[RequestKey, Callable[[SettlementRecord], bytes]]
"""An idempotency record to complete in a booking's transaction: its key, and how to seal the answer."""

__all__ = ["Ledger", "LedgerConflict", "LedgerStore"]

T = TypeVar("T")


class LedgerStore(Protocol):
    """What the hub needs of its ledger. Every method is one transaction; money in fen."""

    async def claim(self, key: RequestKey, fingerprint: str) -> ClaimResult: ...

    async def complete(self, key: RequestKey, outcome: bytes, audit: AuditEntry | None = None) -> None: ...

    async def release(self, key: RequestKey) -> None: ...

    async def finished(self, key: RequestKey, fingerprint: str) -> ClaimResult | None: ...

    async def start_settlement(self, key: RequestKey, fingerprint: str, record: SettlementRecord) -> Started: ...

    async def begin_settlement(self, record: SettlementRecord) -> None: ...

    async def settlement(self, settlement_id: str) -> SettlementRecord | None: ...

    async def settlement_by_request(self, participant: str, request_id: str) -> SettlementRecord | None: ...

    async def drop_pending(self, settlement_id: str, audit: AuditEntry | None = None) -> None: ...

    async def book_settlement(
        self,
        settlement_id: str,
        region_settlement_id: str,
        split: Split,
        now: float,
        audit: AuditEntry | None = None,
        completes: Completion | None = None,
    ) -> SettlementRecord: ...

    async def begin_reversal(
        self, settlement_id: str, reversal_request_id: str, reason: str, now: float, audit: AuditEntry | None = None
    ) -> SettlementRecord: ...

    async def cancel_reversal(
        self, settlement_id: str, now: float, audit: AuditEntry | None = None
    ) -> SettlementRecord: ...

    async def book_reversal(
        self, settlement_id: str, now: float, audit: AuditEntry | None = None
    ) -> SettlementRecord: ...

    async def queue_reversal(
        self, settlement_id: str, payload: str, now: float, audit: AuditEntry | None = None
    ) -> SettlementRecord: ...

    async def void_settlement(
        self, settlement_id: str, reason: str, now: float, audit: AuditEntry | None = None
    ) -> SettlementRecord: ...

    async def claim_unresolved(self, changed_before: float, limit: int) -> list[SettlementRecord]: ...

    async def owed_to_person(self, person_key: str, region: str) -> list[OutboxItem]: ...

    async def enqueue(
        self, kind: str, key: str, region: str, payload: str, now: float, audit: AuditEntry | None = None
    ) -> None: ...

    async def claim_outbox(self, now: float, per_region: int, skip: Collection[str] = ()) -> list[OutboxItem]: ...

    async def release_outbox_claims(self) -> None: ...

    async def outbox_unclaim(self, items: Sequence[OutboxItem]) -> None: ...

    async def outbox_delivered(self, item: OutboxItem, now: float, audit: AuditEntry | None = None) -> None: ...

    async def outbox_failed(self, item: OutboxItem, error: str, retry_at: float) -> None: ...

    async def outbox_backlog(self) -> list[tuple[str, str, int, float]]: ...

    async def prune(self, finished_before: float, delivered_before: float) -> tuple[int, int]: ...

    async def clearing_totals(self, period: str) -> list[tuple[str, str, int, int]]: ...

    async def bookings_on(self, day: str, treatment_area: str, participant: str | None) -> list[Booking]: ...

    async def closed_report(self, period: str) -> str | None: ...

    async def close_period(self, period: str, report: str, now: float, audit: AuditEntry | None = None) -> str: ...

    async def use_token(self, token_id: str, expires_at: float, now: float) -> bool: ...

    async def append_audit(self, entry: AuditEntry, now: float) -> None: ...

    async def audit_head(self) -> tuple[int, str]: ...

    async def last_checkpoint(self) -> Checkpoint | None: ...

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None: ...


class Ledger:
    """The :class:`LedgerStore` over one connection worker.

    Args:
        worker: runs the operations on the store's connection.
        lease_seconds: an IN_PROGRESS idempotency record older than this is taken over by the next claim (the
            first owner crashed); the region deduplicates on the same id, so sending again is safe.
        clock: wall clock, injectable for tests.
        replica: the name this store's claims go by (outbox items, unresolved settlements); by default host,
            process id and a random suffix.
        outbox_lease_seconds: how long an outbox item claimed by a replica is its own.
        shared: whether other processes (replicas) use the same store.
    """

    def __init__(
        self,
        worker: ConnectionWorker,
        *,
        lease_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        replica: str = "",
        outbox_lease_seconds: float = 30.0,
        shared: bool = False,
    ) -> None:
        self.worker, self.lease_seconds, self._clock = worker, lease_seconds, clock
        self.replica = replica or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"  # one per store
        self.outbox_lease_seconds, self.shared = outbox_lease_seconds, shared

    @property
    def is_open(self) -> bool:
        return self.worker.is_open

    async def open(self) -> None:
        await self.worker.open()

    async def close(self) -> None:
        await self.worker.close()

    async def _write(self, operation: Callable[[Db], T], *, serial: bool = False) -> T:
        return await self.worker.run(operation, write=True, serial=serial)

    async def _read(self, operation: Callable[[Db], T]) -> T:
        return await self.worker.run(operation, write=False)

    async def schema_version(self) -> int:
        """The version the store's schema is at."""
        return int(await self._read(lambda db: db.execute("SELECT version FROM schema_version").fetchone()[0]))

    # --- idempotency ---------------------------------------------------------------------------------------

    async def claim(self, key: RequestKey, fingerprint: str) -> ClaimResult:
        now = self._clock()
        return await self._write(lambda db: idempotency.claim(db, key, fingerprint, now, self.lease_seconds))

    async def _audited(self, change: Callable[[Db], T], audit: AuditEntry | None, now: float | None = None) -> T:
        """``change`` and, in the same transaction, its audit record."""

        def audited(db: Db) -> T:
            result = change(db)
            if audit is not None:
                audit_chain.append(db, audit, self._clock() if now is None else now)
            return result

        return await self._write(audited, serial=audit is not None)

    async def complete(self, key: RequestKey, outcome: bytes, audit: AuditEntry | None = None) -> None:
        await self._audited(lambda db: idempotency.complete(db, key, outcome), audit)

    async def release(self, key: RequestKey) -> None:
        await self._write(lambda db: idempotency.release(db, key))

    async def finished(self, key: RequestKey, fingerprint: str) -> ClaimResult | None:
        return await self._read(lambda db: idempotency.finished(db, key, fingerprint))

    async def start_settlement(self, key: RequestKey, fingerprint: str, record: SettlementRecord) -> Started:
        """Claim the request id and write the settlement's intent, in one transaction (module ``settlements``):
        unless the claim is not new, a settlement exists under the id, or the person is owed something first."""
        now = self._clock()

        def start(db: Db) -> Started:
            claim = idempotency.claim(db, key, fingerprint, now, self.lease_seconds)
            if claim.claim is not Claim.NEW:
                return Started(claim)
            existing = settlements.by_request(db, key.participant, key.request_id)
            if existing is not None:
                return Started(claim, existing)
            owed = settlements.owed_to_person(db, record.person_key, record.insured_region)
            if owed:
                return Started(claim, owed=tuple(owed))
            settlements.begin(db, record)
            return Started(claim)

        return await self._write(start)

    # --- settlements -----------------------------------------------------------------------------------------

    async def begin_settlement(self, record: SettlementRecord) -> None:
        await self._write(lambda db: settlements.begin(db, record))

    async def settlement(self, settlement_id: str) -> SettlementRecord | None:
        return await self._read(lambda db: settlements.get(db, settlement_id))

    async def settlement_by_request(self, participant: str, request_id: str) -> SettlementRecord | None:
        return await self._read(lambda db: settlements.by_request(db, participant, request_id))

    async def drop_pending(self, settlement_id: str, audit: AuditEntry | None = None) -> None:
        await self._audited(lambda db: settlements.drop_pending(db, settlement_id), audit)

    async def book_settlement(
        self,
        settlement_id: str,
        region_settlement_id: str,
        split: Split,
        now: float,
        audit: AuditEntry | None = None,
        completes: Completion | None = None,
    ) -> SettlementRecord:
        """PENDING → SETTLED with its clearing entry and, in the same transaction, the audit record and the
        completion of the request's idempotency record (``completes``: its key, and how to seal the answer)."""

        def book(db: Db) -> SettlementRecord:
            record = settlements.book(db, settlement_id, region_settlement_id, split, now)
            if completes is not None:
                key, seal = completes
                idempotency.complete(db, key, seal(record))
            return record

        return await self._audited(book, audit, now)

    async def begin_reversal(
        self, settlement_id: str, reversal_request_id: str, reason: str, now: float, audit: AuditEntry | None = None
    ) -> SettlementRecord:
        return await self._audited(
            lambda db: settlements.begin_reversal(db, settlement_id, reversal_request_id, reason, now), audit, now
        )

    async def cancel_reversal(
        self, settlement_id: str, now: float, audit: AuditEntry | None = None
    ) -> SettlementRecord:
        return await self._audited(lambda db: settlements.cancel_reversal(db, settlement_id, now), audit, now)

    async def book_reversal(self, settlement_id: str, now: float, audit: AuditEntry | None = None) -> SettlementRecord:
        return await self._audited(lambda db: settlements.book_reversal(db, settlement_id, now), audit, now)

    async def queue_reversal(
        self, settlement_id: str, payload: str, now: float, audit: AuditEntry | None = None
    ) -> SettlementRecord:
        return await self._audited(lambda db: settlements.queue_reversal(db, settlement_id, payload, now), audit, now)

    async def void_settlement(
        self, settlement_id: str, reason: str, now: float, audit: AuditEntry | None = None
    ) -> SettlementRecord:
        return await self._audited(lambda db: settlements.void(db, settlement_id, reason, now), audit, now)

    async def claim_unresolved(self, changed_before: float, limit: int) -> list[SettlementRecord]:
        """Lease to this replica the settlements left unresolved since ``changed_before`` (``settlements``)."""
        now = self._clock()
        return await self._write(lambda db: settlements.claim_unresolved(db, changed_before, limit, self.replica, now))

    async def owed_to_person(self, person_key: str, region: str) -> list[OutboxItem]:
        return await self._read(lambda db: settlements.owed_to_person(db, person_key, region))

    # --- the outbox --------------------------------------------------------------------------------------------

    async def enqueue(
        self, kind: str, key: str, region: str, payload: str, now: float, audit: AuditEntry | None = None
    ) -> None:
        await self._audited(lambda db: outbox.enqueue(db, kind, key, region, now, payload), audit, now)

    async def claim_outbox(self, now: float, per_region: int, skip: Collection[str] = ()) -> list[OutboxItem]:
        """Claim for this replica, for ``lease_seconds``, each region's share of the due items, but of the regions
        in ``skip`` (``outbox``)."""
        return await self._write(
            lambda db: outbox.claim_due(db, now, per_region, self.replica, self.outbox_lease_seconds, skip)
        )

    async def release_outbox_claims(self) -> None:
        """Free the outbox claims of earlier runs (``outbox.release_claims``): for a store no other process uses."""
        await self._write(outbox.release_claims)

    async def outbox_unclaim(self, items: Sequence[OutboxItem]) -> None:
        """Free claimed items this replica did not try (``outbox.unclaim``)."""
        await self._write(lambda db: outbox.unclaim(db, items))

    async def outbox_delivered(self, item: OutboxItem, now: float, audit: AuditEntry | None = None) -> None:
        """An item acknowledged, with what it settles: a correction makes its settlement CORRECTED, a reversal
        books its settlement REVERSED — in the same transaction."""

        def delivered(db: Db) -> None:
            outbox.delivered(db, item, now)
            if item.kind == CORRECTION:
                settlements.corrected(db, item.key)
            elif item.kind == REVERSAL:
                reversing = settlements.by_reversal(db, item.key)
                if reversing is not None and reversing.state is SettlementState.REVERSING:
                    settlements.book_reversal(db, reversing.settlement_id, now)

        await self._audited(delivered, audit, now)

    async def outbox_failed(self, item: OutboxItem, error: str, retry_at: float) -> None:
        await self._write(lambda db: outbox.failed(db, item, error, retry_at))

    async def outbox_backlog(self) -> list[tuple[str, str, int, float]]:
        return await self._read(outbox.backlog)

    async def prune(self, finished_before: float, delivered_before: float) -> tuple[int, int]:
        """Forget finished idempotency records and delivered outbox items older than those moments."""

        def prune(db: Db) -> tuple[int, int]:
            return idempotency.prune(db, finished_before), outbox.prune(db, delivered_before)

        return await self._write(prune)

    async def clearing_totals(self, period: str) -> list[tuple[str, str, int, int]]:
        return await self._read(lambda db: clearing.totals(db, period))

    # --- clearing ------------------------------------------------------------------------------------------------

    async def bookings_on(self, day: str, treatment_area: str, participant: str | None) -> list[Booking]:
        return await self._read(lambda db: clearing.bookings_on(db, day, treatment_area, participant))

    async def closed_report(self, period: str) -> str | None:
        return await self._read(lambda db: clearing.closed_report(db, period))

    async def close_period(self, period: str, report: str, now: float, audit: AuditEntry | None = None) -> str:
        return await self._audited(lambda db: clearing.close_period(db, period, report, now), audit, now)

    # --- e-card tokens ---------------------------------------------------------------------------------------------

    async def use_token(self, token_id: str, expires_at: float, now: float) -> bool:
        return await self._write(lambda db: tokens.use_token(db, token_id, expires_at, now))

    # --- the audit chain --------------------------------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry, now: float) -> None:
        await self._write(lambda db: audit_chain.append(db, entry, now), serial=True)

    async def audit_head(self) -> tuple[int, str]:
        return await self._read(audit_chain.head)

    async def last_checkpoint(self) -> Checkpoint | None:
        return await self._read(audit_chain.last_checkpoint)

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._write(lambda db: audit_chain.add_checkpoint(db, checkpoint))
