"""Money safety under every fault, with fake regions and a fake clock: each crash window of a settlement and of
a reversal resolved by the sweeper to the region's truth; answers that may have reached the region; reversals
through the outbox; corrections delivered before a person's next settlement; a fair outbox; retention."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from adapters import domain
from adapters.errors import RegionTimeout, RegionUnavailable, SettlementNotSettled
from gateway import canonical
from gateway.domain import ReverseRequest
from gateway.errors import CorrectionPending, LedgerUnavailable, RequestInProgress, SettlementOutcomeUnknown
from gateway.ledger import ADVICE, CORRECTION, REVERSAL, RequestKey, SettlementRecord, SettlementState
from gateway.periods import period_of
from tests.unit.fakes import FakeRegion, Harness, bill, split_of

SC, YRD = "sichuan-chongqing", "yangtze-delta"


def patient(hub: Harness, skip: int = 0, region_id: str = SC) -> tuple[FakeRegion, domain.Bill]:
    region = hub.regions[region_id]
    people = [p for p in region.people if p.status is domain.CardStatus.NORMAL and p.insurance]
    return region, bill(people[skip], f"req-{uuid.uuid4().hex[:8]}")


async def state(hub: Harness, request: domain.Bill) -> SettlementState:
    record = await hub.ledger.settlement_by_request("dev", request.request_id)
    assert record is not None
    return record.state


async def intent(hub: Harness, request: domain.Bill) -> SettlementRecord:
    """The PENDING row a settle writes before it asks the region, as a dead process leaves it."""
    p = request.credential
    record = SettlementRecord(
        settlement_id=f"stl-{uuid.uuid4().hex}",
        participant="dev",
        request_id=request.request_id,
        region_request_id=request.request_id,
        state=SettlementState.PENDING,
        sealed_ssn=hub.services.settlements.sealer.seal(p.social_security_number),
        insured_area=p.issuing_area,
        treatment_area=request.treatment_area,
        insured_region=SC,
        institution_id=request.institution_id,
        visit_type=request.visit_type,
        hospital_level=request.hospital_level,
        created_at=hub.clock(),
        bill_total_fen=sum(line.amount_fen for line in request.lines),
        person_key=hub.services.settlements.person_key(p.social_security_number),
    )
    await hub.ledger.begin_settlement(record)
    return record


# --- crash windows of a settlement: after the intent, after the region's answer, before the book ---------------


async def test_killed_after_the_intent_the_sweeper_voids_what_the_region_never_got(hub: Harness) -> None:
    region, request = patient(hub)
    await intent(hub, request)

    assert await hub.services.sweeper.sweep(everything=True) == 1
    await hub.services.outbox.deliver_due()

    assert await state(hub, request) is SettlementState.CORRECTED
    assert request.request_id in region.corrected and region.settled_fund() == 0


async def test_killed_after_the_regions_answer_the_sweeper_books_what_the_region_settled(hub: Harness) -> None:
    region, request = patient(hub)
    record = await intent(hub, request)
    await region.settle(request, timeout=1)  # the region settled; the hub died before it booked

    assert await hub.services.sweeper.sweep() == 0  # a live call may still be on it: wait for the lease
    hub.clock.advance(hub.config.sweep_lease_seconds + 1)
    assert await hub.services.sweeper.sweep() == 1

    booked = await hub.ledger.settlement(record.settlement_id)
    assert booked is not None and booked.state is SettlementState.SETTLED and booked.split == split_of(request)
    report = await hub.services.clearing.report(period_of(hub.clock()))
    assert report.fund_pay_fen == split_of(request).fund_pay_fen == region.settled_fund()


async def test_a_failed_book_is_resolved_by_the_sweeper_while_the_hub_runs(hub: Harness) -> None:
    region, request = patient(hub)
    original = hub.ledger.book_settlement

    async def ledger_fails(*args: object, **kwargs: object) -> SettlementRecord:
        raise RuntimeError("disk full")  # the book step fails once: the row stays PENDING

    hub.ledger.book_settlement = ledger_fails  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await hub.services.settlements.settle(hub.call(), request.credential, request)
    hub.ledger.book_settlement = original  # type: ignore[method-assign]
    hub.clock.advance(hub.config.sweep_lease_seconds + 1)

    assert await hub.services.sweeper.sweep() == 1
    assert await state(hub, request) is SettlementState.SETTLED
    again = await hub.services.settlements.settle(hub.call(), request.credential, request)  # the caller's retry
    assert again.state is SettlementState.SETTLED and region.calls.count("settle") == 1


async def test_a_retry_after_the_booking_lost_its_ledger_books_the_regions_settlement_at_once(hub: Harness) -> None:
    region, request = patient(hub)
    original = hub.ledger.book_settlement

    async def ledger_fails(*args: object, **kwargs: object) -> SettlementRecord:
        raise LedgerUnavailable("deadlock detected")  # after the region settled

    hub.ledger.book_settlement = ledger_fails  # type: ignore[method-assign]
    with pytest.raises(LedgerUnavailable):
        await hub.services.settlements.settle(hub.call(), request.credential, request)
    hub.ledger.book_settlement = original  # type: ignore[method-assign]

    again = await hub.services.settlements.settle(hub.call(), request.credential, request)  # no lease to wait out

    [booked] = region.books.values()
    assert again.state is SettlementState.SETTLED and again.split == booked.settlement.split
    assert (region.calls.count("settle"), region.calls.count("settlement_outcome")) == (1, 1)


async def test_a_retry_of_a_settled_request_is_answered_while_the_cards_region_is_down(hub: Harness) -> None:
    region, request = patient(hub)
    first = await hub.services.settlements.settle(hub.call(), request.credential, request)
    region.fail("get_card", RegionUnavailable(SC, "down"), times=10)

    again = await hub.services.settlements.settle(hub.call(), request.credential, request)

    assert again == first


async def test_a_retry_while_its_earlier_call_is_pending_and_the_cards_region_down_is_told_in_progress(
    hub: Harness,
) -> None:
    region, request = patient(hub)
    await intent(hub, request)
    await region.settle(request, timeout=1)  # the region settled; the replica that asked died before it booked
    region.fail("get_card", RegionUnavailable(SC, "down"), times=10)

    with pytest.raises(RequestInProgress):  # not UNAVAILABLE, which would read as "nothing was settled"
        await hub.services.settlements.settle(hub.call(), request.credential, request)

    region.clear_faults()
    again = await hub.services.settlements.settle(hub.call(), request.credential, request)
    assert again.state is SettlementState.SETTLED and again.split == split_of(request)
    assert region.calls.count("settle") == 1


# --- crash windows of a reversal -------------------------------------------------------------------------------


async def settled(hub: Harness, skip: int = 0) -> tuple[FakeRegion, domain.Bill, SettlementRecord]:
    region, request = patient(hub, skip)
    return region, request, await hub.services.settlements.settle(hub.call(), request.credential, request)


async def test_killed_after_the_reversals_intent_the_sweeper_delivers_it(hub: Harness) -> None:
    region, request, record = await settled(hub)
    await hub.ledger.begin_reversal(record.settlement_id, "rev-1", "撤销", hub.clock())  # then the hub died

    assert await hub.services.sweeper.sweep(everything=True) == 1  # the region still holds it: reversal queued
    [item] = await hub.owed()
    assert (item.kind, item.key) == (REVERSAL, "rev-1")
    assert await hub.services.outbox.deliver_due() == 1

    assert await state(hub, request) is SettlementState.REVERSED
    assert region.settled_fund() == 0
    report = await hub.services.clearing.report(period_of(hub.clock()))
    assert (report.count, report.fund_pay_fen) == (0, 0)


async def test_killed_after_the_region_reversed_the_sweeper_books_the_reversal(hub: Harness) -> None:
    region, request, record = await settled(hub)
    await hub.ledger.begin_reversal(record.settlement_id, "rev-1", "撤销", hub.clock())
    await region.reverse_settlement(domain.Reversal("rev-1", request.request_id, "", ""), timeout=1)

    assert await hub.services.sweeper.sweep(everything=True) == 1

    assert await state(hub, request) is SettlementState.REVERSED
    assert await hub.owed() == []
    assert region.calls.count("reverse_settlement") == 1


# --- what may have reached the region ---------------------------------------------------------------------------


async def test_unavailable_after_the_region_got_the_settle_is_asked_not_dropped(hub: Harness) -> None:
    region, request = patient(hub)
    region.fail("settle", RegionUnavailable(SC, "connection reset", may_have_reached=True), after=True)

    record = await hub.services.settlements.settle(hub.call(), request.credential, request)

    assert record.state is SettlementState.SETTLED and region.settled_fund() == split_of(request).fund_pay_fen
    assert region.calls.count("settle") == 1 and region.calls.count("settlement_outcome") == 1


async def test_a_reversal_timing_out_is_pending_then_delivered_through_the_outbox(hub: Harness) -> None:
    region, request, record = await settled(hub)
    hub.tune(SC, breaker_consecutive_failures=100, breaker_failure_ratio=1.0)  # this test is about the outbox
    region.fail("reverse_settlement", RegionTimeout(SC, "no answer"), times=10)
    region.fail("settlement_outcome", RegionTimeout(SC, "no answer"), times=10)
    reverse = ReverseRequest("rev-1", record.settlement_id, "撤销")

    pending = await hub.services.reversals.reverse(hub.call(), reverse)
    with pytest.raises(SettlementNotSettled):  # one reversal per settlement
        await hub.services.reversals.reverse(hub.call(), replace(reverse, request_id="rev-2"))

    assert pending.state is SettlementState.REVERSING and region.settled_fund() > 0
    region.clear_faults()  # the region is back
    hub.clock.advance(120)
    assert await hub.services.outbox.deliver_due() == 1
    assert await state(hub, request) is SettlementState.REVERSED and region.settled_fund() == 0
    assert (await hub.services.reversals.reverse(hub.call(), reverse)).state is SettlementState.REVERSING  # replay


async def test_a_reversal_that_never_left_stays_settled(hub: Harness) -> None:
    region, request, record = await settled(hub)
    region.fail("reverse_settlement", RegionUnavailable(SC, "connection refused"), times=10)

    with pytest.raises(RegionUnavailable):
        await hub.services.reversals.reverse(hub.call(), ReverseRequest("rev-1", record.settlement_id, ""))

    assert await state(hub, request) is SettlementState.SETTLED
    assert await hub.owed() == []


# --- a correction before the next settlement --------------------------------------------------------------------


async def unknown_outcome(hub: Harness, region: FakeRegion, request: domain.Bill) -> None:
    region.fail("settle", RegionTimeout(SC, "no answer"), after=True)
    region.fail("settlement_outcome", RegionTimeout(SC, "no answer"), times=3)
    with pytest.raises(SettlementOutcomeUnknown):
        await hub.services.settlements.settle(hub.call(), request.credential, request)


async def test_a_pending_correction_is_delivered_before_the_persons_next_settlement(hub: Harness) -> None:
    region, first = patient(hub)
    await unknown_outcome(hub, region, first)
    assert region.settled_fund() > 0  # the region holds the first bill; its correction waits in the outbox

    second = replace(first, request_id="req-again")
    record = await hub.services.settlements.settle(hub.call(), second.credential, second)

    assert region.calls.index("correct_settlement") < len(region.calls) - region.calls[::-1].index("settle") - 1
    assert first.request_id in region.corrected and await state(hub, first) is SettlementState.CORRECTED
    assert record.state is SettlementState.SETTLED and region.settled_fund() == split_of(second).fund_pay_fen


async def test_a_correction_that_cannot_be_delivered_refuses_the_next_settlement(hub: Harness) -> None:
    region, first = patient(hub)
    await unknown_outcome(hub, region, first)
    region.fail("correct_settlement", RegionUnavailable(SC, "down"), times=10)

    second = replace(first, request_id="req-again")
    with pytest.raises(CorrectionPending) as refused:
        await hub.services.settlements.settle(hub.call(), second.credential, second)

    assert refused.value.metadata == {"region": SC}
    assert region.calls.count("settle") == 1  # the second bill never went
    _, other = patient(hub, region_id=YRD)  # another region is not held up
    assert (await hub.services.settlements.settle(hub.call(), other.credential, other)).state is SettlementState.SETTLED


# --- a fair, prioritised outbox ----------------------------------------------------------------------------------


async def test_advices_of_a_dead_region_do_not_delay_a_healthy_regions_correction(hub: Harness) -> None:
    advice = domain.StandInAdvice("a", "X00000019", "310104", domain.ServiceKind.TRANSIT, "330100", "t", "t")
    for i in range(300):  # a long backlog at a region that is down
        payload = canonical.encode(replace(advice, advice_id=f"adv-{i}")).decode()
        await hub.ledger.enqueue(ADVICE, f"adv-{i}", YRD, payload, hub.clock() - 1000 + i)
    await hub.ledger.enqueue(CORRECTION, "r-late", SC, "", hub.clock())
    await hub.ledger.enqueue(CORRECTION, "r-yrd", YRD, "", hub.clock())
    hub.regions[YRD].fail("correct_settlement", RegionUnavailable(YRD, "down"), times=100)

    await hub.services.outbox.deliver_due()

    assert "r-late" in hub.regions[SC].corrected  # the healthy region's correction went in the first round
    assert hub.regions[YRD].calls[0] == "correct_settlement"  # money before advices at the dead region too
    assert hub.regions[YRD].calls.count("send_stand_in_advice") == 0  # and the dead region was not hammered
    depth = {"region": YRD, "kind": ADVICE}
    assert hub.metric("yikatong_outbox_depth", depth) == 300
    assert hub.metric("yikatong_outbox_oldest_age_seconds", depth) == 1000


# --- retention ----------------------------------------------------------------------------------------------------


async def test_old_idempotency_records_and_delivered_items_are_pruned_settlements_kept(hub: Harness) -> None:
    region, request, record = await settled(hub)
    await hub.ledger.enqueue(CORRECTION, "old", SC, "", hub.clock())
    await hub.services.outbox.deliver_due()
    hub.clock.advance(31 * 86400)

    assert await hub.services.sweeper.prune() == (1, 1)
    assert (await hub.ledger.claim(RequestKey("dev", "Settle", request.request_id), "x")).claim.name == "NEW"
    assert await hub.ledger.settlement(record.settlement_id) == record  # the settlement stays
    await hub.ledger.release(RequestKey("dev", "Settle", request.request_id))
    again = await hub.services.settlements.settle(hub.call(), request.credential, request)
    assert again == record and region.calls.count("settle") == 1  # a late retry answers from the settlement
