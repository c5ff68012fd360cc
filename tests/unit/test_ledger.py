"""The ledger stores: records survive a restart, claims are won once, errors are LEDGER_UNAVAILABLE, writes share
commits — on a real SQLite file and on the machine's PostgreSQL (a fresh schema a test)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from gateway.api.status import code_of
from gateway.errors import LedgerUnavailable
from gateway.ledger import Claim, ClaimResult, LedgerConflict, RequestKey, SqliteLedger, audit
from gateway.ledger.audit import AuditEntry
from gateway.ledger.postgres import PostgresLedger
from gateway.ledger.schema import MIGRATIONS
from gateway.ledger.store import Ledger
from gateway.ledger.worker import Db
from tests.postgres import fresh_schema

Opens = Callable[..., Ledger]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opens]:
    """Makes ledgers of one store (the same file or schema each time, so a reopened one finds its records)."""
    if request.param == "sqlite":
        yield lambda **options: SqliteLedger(tmp_path / "ledger.sqlite3", **options)
        return
    with fresh_schema() as url:
        yield lambda **options: PostgresLedger(url, **options)


async def test_a_finished_write_is_replayed_after_the_ledger_is_reopened(store: Opens) -> None:
    ledger = store()
    await ledger.open()
    assert (await ledger.claim(RequestKey("dev", "ReportLoss", "r-1"), "fp")).claim is Claim.NEW
    assert (await ledger.claim(RequestKey("dev", "ReportLoss", "r-1"), "fp")).claim is Claim.IN_PROGRESS
    await ledger.complete(RequestKey("dev", "ReportLoss", "r-1"), b"answer")
    await ledger.close()

    reopened = store()
    await reopened.open()
    assert await reopened.schema_version() == len(MIGRATIONS)
    assert await reopened.claim(RequestKey("dev", "ReportLoss", "r-1"), "fp") == ClaimResult(Claim.REPLAY, b"answer")
    assert (await reopened.claim(RequestKey("dev", "ReportLoss", "r-1"), "other")).claim is Claim.MISMATCH
    assert (await reopened.claim(RequestKey("dev", "ApplyCard", "r-1"), "other")).claim is Claim.NEW
    await reopened.close()


async def test_a_claim_left_by_a_crash_is_taken_over_after_the_lease(store: Opens) -> None:
    now = [1000.0]
    ledger = store(lease_seconds=60, clock=lambda: now[0])
    await ledger.open()
    assert (await ledger.claim(RequestKey("dev", "ReplaceCard", "r-2"), "fp")).claim is Claim.NEW
    now[0] += 30
    assert (await ledger.claim(RequestKey("dev", "ReplaceCard", "r-2"), "fp")).claim is Claim.IN_PROGRESS
    now[0] += 31
    assert (await ledger.claim(RequestKey("dev", "ReplaceCard", "r-2"), "fp")).claim is Claim.NEW
    await ledger.release(RequestKey("dev", "ReplaceCard", "r-2"))
    assert (await ledger.claim(RequestKey("dev", "ReplaceCard", "r-2"), "fp")).claim is Claim.NEW
    await ledger.close()


async def test_a_locked_ledger_is_unavailable_not_an_internal_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path, busy_timeout_ms=50)
    await ledger.open()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the file

    with pytest.raises(LedgerUnavailable) as locked:
        await ledger.claim(RequestKey("dev", "Settle", "r-3"), "fp")
    other.execute("ROLLBACK")
    other.close()

    assert "locked" in locked.value.message
    assert code_of(locked.value).name == "UNAVAILABLE" and locked.value.reason == "LEDGER_UNAVAILABLE"
    assert (
        await ledger.claim(RequestKey("dev", "Settle", "r-3"), "fp")
    ).claim is Claim.NEW  # and it recovers once the lock is gone
    await ledger.close()


async def test_a_corrupt_ledger_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not a database, just some bytes" * 200)
    ledger = SqliteLedger(path)

    with pytest.raises(LedgerUnavailable) as corrupt:
        await ledger.open()
    with pytest.raises(LedgerUnavailable):
        await ledger.claim(RequestKey("dev", "Settle", "r-4"), "fp")

    assert "not a database" in corrupt.value.message
    await ledger.close()


async def test_concurrent_writes_share_commits(store: Opens) -> None:
    commits: list[int] = []
    ledger = store(on_commit=commits.append)
    await ledger.open()

    claims = await asyncio.gather(*(ledger.claim(RequestKey("dev", "Settle", f"r-{i}"), "fp") for i in range(200)))

    assert all(c.claim is Claim.NEW for c in claims)
    assert sum(commits) == 200  # every write committed ...
    assert len(commits) < 200  # ... in fewer transactions than writes
    await ledger.close()


async def test_a_failed_operation_in_a_shared_commit_undoes_only_itself(store: Opens) -> None:
    ledger = store()
    await ledger.open()

    def half_then_fail(db: Db) -> None:
        db.execute("INSERT INTO ecard_tokens VALUES ('half', 1.0)")
        raise LedgerConflict("refused after writing")

    results = await asyncio.gather(
        ledger.use_token("before", 10.0, 0.0),
        ledger.worker.run(half_then_fail, write=True),
        ledger.use_token("after", 10.0, 0.0),
        return_exceptions=True,
    )

    assert results[0] is True and results[2] is True and isinstance(results[1], LedgerConflict)
    rows = await ledger.worker.run(lambda db: db.execute("SELECT token_id FROM ecard_tokens").fetchall(), write=False)
    assert sorted(r[0] for r in rows) == ["after", "before"]
    await ledger.close()


async def test_concurrent_claims_of_one_request_id_from_two_connections_make_one_owner(store: Opens) -> None:
    """Two replicas' ledgers (two connections) claim the same id at once: exactly one owns it."""
    first, second = store(), store()
    await first.open()
    await second.open()
    key = RequestKey("hospital-a", "Settle", "same-id")

    claims = await asyncio.gather(*(ledger.claim(key, "fp") for ledger in (first, second) for _ in range(10)))

    assert [c.claim for c in claims].count(Claim.NEW) == 1
    await first.close()
    await second.close()


async def test_replicas_appending_to_the_audit_chain_while_locking_rows_do_not_deadlock(store: Opens) -> None:
    """Each replica's commits mix audit appends with writes to a row the other replica's commits also write: the
    chain's lock is taken before any row lock, so neither waits for the other in a circle."""
    first, second = store(), store()
    await first.open()
    await second.open()

    def touch(db: Db) -> None:
        db.execute("UPDATE schema_version SET version = version")  # the row every commit of this test wants

    def work(ledger: Ledger, n: int) -> Awaitable[object]:
        if n % 2:
            return ledger.worker.run(touch, write=True)
        return ledger.append_audit(AuditEntry("hub", "Test", f"{id(ledger)}-{n}", "OK", "WRITTEN"), float(n))

    # One replica's commits start with an append, the other's with the row.
    await asyncio.gather(*(work(ledger, n + shift) for n in range(200) for shift, ledger in enumerate((first, second))))

    records = await first.worker.run(lambda db: audit.records(db, 0, 1000), write=False)
    assert [r.seq for r in records] == list(range(1, 201))
    assert all(r.prev == before.hash for before, r in itertools.pairwise(records))
    await first.close()
    await second.close()
