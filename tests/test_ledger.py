"""The SQLite ledger on a real file: idempotency records survive a restart; a stale claim can be taken over."""

from __future__ import annotations

from pathlib import Path

from gateway.ledger import Claim, ClaimResult
from gateway.schema import MIGRATIONS
from gateway.sqlite_ledger import SqliteLedger


async def test_a_finished_write_is_replayed_after_the_ledger_is_reopened(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    await ledger.open()
    assert (await ledger.claim("ReportLoss", "r-1", "fp")).claim is Claim.NEW
    assert (await ledger.claim("ReportLoss", "r-1", "fp")).claim is Claim.IN_PROGRESS
    await ledger.complete("ReportLoss", "r-1", b"answer")
    await ledger.close()

    reopened = SqliteLedger(tmp_path / "ledger.sqlite3")
    await reopened.open()
    assert await reopened.schema_version() == len(MIGRATIONS)
    assert await reopened.claim("ReportLoss", "r-1", "fp") == ClaimResult(Claim.REPLAY, b"answer")
    assert (await reopened.claim("ReportLoss", "r-1", "other")).claim is Claim.MISMATCH
    assert (await reopened.claim("ApplyCard", "r-1", "other")).claim is Claim.NEW
    await reopened.close()


async def test_a_claim_left_by_a_crash_is_taken_over_after_the_lease(tmp_path: Path) -> None:
    now = [1000.0]
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", lease_seconds=60, clock=lambda: now[0])
    await ledger.open()
    assert (await ledger.claim("ReplaceCard", "r-2", "fp")).claim is Claim.NEW
    now[0] += 30
    assert (await ledger.claim("ReplaceCard", "r-2", "fp")).claim is Claim.IN_PROGRESS
    now[0] += 31
    assert (await ledger.claim("ReplaceCard", "r-2", "fp")).claim is Claim.NEW
    await ledger.release("ReplaceCard", "r-2")
    assert (await ledger.claim("ReplaceCard", "r-2", "fp")).claim is Claim.NEW
    await ledger.close()
