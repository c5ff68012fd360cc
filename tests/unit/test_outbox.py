"""The outbox's delivery order with fake regions: a refused item does not block, an unreachable region waits."""

from __future__ import annotations

from adapters.errors import RegionProtocolError, RegionUnavailable
from gateway.ledger import CORRECTION
from tests.unit.fakes import Harness

YRD = "yangtze-delta"


async def queue_three(hub: Harness) -> None:
    for i, key in enumerate(("r-1", "r-2", "r-3")):
        await hub.ledger.enqueue(CORRECTION, key, YRD, "", now=hub.clock() - 100 + i)


async def test_an_item_the_region_refuses_does_not_hold_back_the_others(hub: Harness) -> None:
    await queue_three(hub)
    hub.regions[YRD].fail("correct_settlement", RegionProtocolError(YRD, "cannot read it"))

    delivered = await hub.services.outbox.deliver_due()

    assert (delivered, hub.regions[YRD].corrected) == (2, {"r-2", "r-3"})
    assert await hub.ledger.outbox_backlog() == [(YRD, CORRECTION, 1, hub.clock() - 100)]  # r-1 stays, for its retry
    failed = {"kind": CORRECTION, "region": YRD, "result": "failed"}
    assert hub.metric("yikatong_outbox_deliveries_total", failed) == 1


async def test_an_unreachable_region_holds_its_later_items_for_the_next_round(hub: Harness) -> None:
    await queue_three(hub)
    attempts = next(r for r in hub.config.regions if r.region_id == YRD).resilience.max_attempts
    hub.regions[YRD].fail("correct_settlement", RegionUnavailable(YRD, "down"), times=attempts)

    delivered = await hub.services.outbox.deliver_due()

    assert (delivered, hub.regions[YRD].calls.count("correct_settlement")) == (0, attempts)
    assert await hub.ledger.outbox_backlog() == [(YRD, CORRECTION, 3, hub.clock() - 100)]
    assert await hub.services.outbox.deliver_due() == 0  # the region is backed off as a whole: not even asked
    assert hub.regions[YRD].calls.count("correct_settlement") == attempts
    hub.clock.advance(1)  # past the backoff (well within a claim's lease: nothing stays claimed for nothing)
    assert await hub.services.outbox.deliver_due() == 3
    assert await hub.ledger.outbox_backlog() == []
