"""The outbox's delivery order, with a fake region (logic only; tests with real regions are the hub tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from adapters.errors import RegionProtocolError, RegionUnavailable
from gateway.ledger import CORRECTION
from gateway.metrics import Metrics
from gateway.outbox import Outbox
from gateway.sqlite_ledger import SqliteLedger


class FakeFederation:
    """Answers each correction from a script: the error to raise for a key, else success."""

    def __init__(self, failures: dict[str, Exception]) -> None:
        self.failures, self.asked = failures, list[str]()

    async def call(self, region: str, operation: str, op: Callable[[Any, float], Awaitable[Any]], **_: Any) -> Any:
        class Adapter:
            async def correct_settlement(inner, key: str, *, timeout: float) -> None:
                self.asked.append(key)
                if key in self.failures:
                    raise self.failures[key]

        return await op(Adapter(), 1.0)


async def outbox_with(tmp_path: Path, failures: dict[str, Exception]) -> tuple[Outbox, FakeFederation, SqliteLedger]:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    await ledger.open()
    for i, key in enumerate(("r-1", "r-2", "r-3")):
        await ledger.enqueue(CORRECTION, key, "yangtze-delta", "", now=1000.0 + i)
    federation = FakeFederation(failures)
    return Outbox(ledger, federation, Metrics(), clock=lambda: 2000.0), federation, ledger  # type: ignore[arg-type]


async def test_an_item_the_region_refuses_does_not_hold_back_the_others(tmp_path: Path) -> None:
    outbox, federation, ledger = await outbox_with(tmp_path, {"r-1": RegionProtocolError("yangtze-delta", "bad")})
    delivered = await outbox.deliver_due()
    assert (delivered, federation.asked) == (2, ["r-1", "r-2", "r-3"])
    assert await ledger.outbox_backlog() == (1, 1000.0)  # r-1 stays, for its own retry
    await ledger.close()


async def test_an_unreachable_region_holds_its_later_items_for_the_next_round(tmp_path: Path) -> None:
    outbox, federation, ledger = await outbox_with(tmp_path, {"r-1": RegionUnavailable("yangtze-delta", "down")})
    delivered = await outbox.deliver_due()
    assert (delivered, federation.asked) == (0, ["r-1"])
    assert await ledger.outbox_backlog() == (3, 1000.0)
    await ledger.close()
