"""The ledger's connection worker: one thread owns one database connection, and writes share commits.

Every operation is a function of the connection, run on the worker's thread so no database call blocks the event
loop. Operations queue up while the thread is busy (most of its time goes to the commit's ``fdatasync``); the
thread then takes every queued operation, up to ``max_batch``, and runs them in **one** transaction — each
inside its own savepoint, so one operation's failure undoes only its own changes — and commits once (group
commit). Each caller is answered only after that commit, so durability is unchanged: an answered write is on
disk. A batch of reads only runs without a transaction.

Database errors are translated here, at one choke point, into :class:`~gateway.errors.LedgerUnavailable`; the
operations' own exceptions (e.g. :class:`~gateway.ledger.store.LedgerConflict`) reach their caller unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from gateway.errors import LedgerUnavailable

T = TypeVar("T")
log = logging.getLogger("yikatong.ledger")


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Db(Protocol):
    """The part of a DB-API connection the ledger's operations use; ``?`` placeholders.

    A store whose connections are shared by several processes (PostgreSQL) gives its connection two more
    attributes, read with :func:`locking` and :func:`serialize`: the row-locking clause of a claim, and a way to
    take a transaction-long lock that puts concurrent transactions in one order.
    """

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...


def locking(db: Db, *, skip: bool = False) -> str:
    """The clause that locks the rows a select reads until the transaction ends — with ``skip``, passing over
    rows another transaction holds — or "" when one process is the only writer (SQLite)."""
    clause = str(getattr(db, "for_update", ""))
    return clause + " SKIP LOCKED" if clause and skip else clause


SERIAL = "serial"
"""The lock that puts the transactions appending to the audit chain in one order across replicas. A transaction
takes it first of all (a job marked ``serial``), before any row lock: one that held rows and then waited for it
could deadlock with one that held it and then wanted those rows."""


def serialize(db: Db, name: str) -> None:
    """Hold a lock named ``name`` until the transaction ends (nothing to do for a single writer)."""
    lock = getattr(db, "lock", None)
    if lock is not None:
        lock(name)


Operation = Callable[[Db], T]


@dataclass
class _Job(Generic[T]):
    operation: Operation[T]
    write: bool
    serial: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T] = field(init=False)

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()


class ConnectionWorker:
    """Runs ledger operations on one connection in one thread, with group commit (module docstring).

    Args:
        connect: opens the connection (on the worker's thread) and prepares it (migrations).
        database_errors: the driver's exception classes, translated into ``LedgerUnavailable``.
        begin: the statement that opens a write transaction.
        max_batch: most operations in one transaction.
        on_commit: told the number of operations each commit carried (for metrics).
    """

    def __init__(
        self,
        connect: Callable[[], Db],
        database_errors: tuple[type[Exception], ...],
        *,
        begin: str = "BEGIN",
        max_batch: int = 128,
        on_commit: Callable[[int], None] = lambda operations: None,
    ) -> None:
        self._connect, self._errors, self._begin = connect, database_errors, begin
        self.max_batch, self.on_commit = max_batch, on_commit
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._db: Db | None = None
        self.commits = 0

    @property
    def is_open(self) -> bool:
        return self._db is not None

    async def open(self) -> None:
        """Start the thread and open the connection on it."""
        self._thread = threading.Thread(target=self._serve, name="ledger", daemon=True)
        self._thread.start()
        await self.run(lambda db: None, write=False)

    async def run(self, operation: Operation[T], *, write: bool, serial: bool = False) -> T:
        """Run ``operation(db)`` on the worker; a write is answered once its transaction is committed. A
        ``serial`` write appends to the audit chain: its transaction takes :data:`SERIAL` first."""
        if self._thread is None:
            raise LedgerUnavailable("the ledger is not open")
        job = _Job(operation, write, serial, asyncio.get_running_loop())
        self._queue.put(job)
        return await job.future

    async def close(self) -> None:
        """Finish the queued operations, close the connection and stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._thread = None

    # --- the worker thread ---------------------------------------------------------------------------------

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch: list[_Job[Any]] = [first]
            while len(batch) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._execute(batch)
        if self._db is not None:
            close = getattr(self._db, "close", None)
            if close is not None:
                close()
            self._db = None

    def _execute(self, batch: list[_Job[Any]]) -> None:
        try:
            db = self._opened()
        except LedgerUnavailable as exc:
            self._answer([(job, exc, False) for job in batch])
            return
        writes = any(job.write for job in batch)
        results: list[tuple[_Job[Any], Any, bool]] = []
        try:
            if writes:
                db.execute(self._begin)
                if any(job.serial for job in batch):
                    serialize(db, SERIAL)
            for job in batch:
                results.append((job, *self._one(db, job, savepoint=writes)))
            if writes:
                db.execute("COMMIT")
                self.commits += 1
                self.on_commit(sum(job.write for job in batch))
        except self._errors as exc:
            self._abandon(db, writes)
            failed = self._unavailable(exc)
            results = [(job, failed, False) for job in batch]
            if getattr(db, "broken", False):  # a lost connection: the next batch opens a new one
                self._db = None
        self._answer(results)

    def _one(self, db: Db, job: _Job[Any], *, savepoint: bool) -> tuple[Any, bool]:
        """``(result, True)`` or ``(exception, False)`` of one operation; its changes undone when it failed."""
        if savepoint:
            db.execute("SAVEPOINT operation")
        try:
            result = job.operation(db)
        except Exception as exc:
            if savepoint:
                db.execute("ROLLBACK TO SAVEPOINT operation")
                db.execute("RELEASE SAVEPOINT operation")
            return (self._unavailable(exc) if isinstance(exc, self._errors) else exc), False
        if savepoint:
            db.execute("RELEASE SAVEPOINT operation")
        return result, True

    def _opened(self) -> Db:
        if self._db is None:
            try:
                self._db = self._connect()
            except self._errors as exc:
                raise self._unavailable(exc) from exc
        return self._db

    def _abandon(self, db: Db, writes: bool) -> None:
        if writes:
            try:
                db.execute("ROLLBACK")
            except self._errors:
                log.warning("rollback after a failed ledger transaction failed too")

    @staticmethod
    def _unavailable(exc: Exception) -> LedgerUnavailable:
        log.error("ledger error: %s: %s", type(exc).__name__, exc)
        return LedgerUnavailable(f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _answer(results: list[tuple[_Job[Any], Any, bool]]) -> None:
        for job, value, ok in results:
            job.loop.call_soon_threadsafe(_settle, job.future, value, ok)


def _settle(future: asyncio.Future[Any], value: Any, ok: bool) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
