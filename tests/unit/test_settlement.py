"""Settlement orchestration with fake regions: every outcome branch, idempotency, reversal and recovery."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from adapters import domain
from adapters.errors import (
    IdempotencyKeyReused,
    NotInsured,
    RegionSplitInvalid,
    RegionTimeout,
    RegionUnavailable,
    SettlementCorrected,
    SettlementNotSettled,
)
from gateway.domain import ReverseRequest
from gateway.errors import SettlementOutcomeUnknown, StoredRefusal
from gateway.ledger import SettlementState
from tests.unit.fakes import Harness, bill, harness, split_of

SICHUAN = "sichuan-chongqing"


def insured(hub: Harness) -> tuple[domain.Bill, object]:
    region = hub.regions[SICHUAN]
    person = region.person(status=domain.CardStatus.NORMAL, insured=True)
    return bill(person, "req-1"), region


async def states(hub: Harness) -> list[tuple[str, str]]:
    rows = await hub.ledger.worker.run(
        lambda db: db.execute("SELECT request_id, state FROM settlements ORDER BY request_id").fetchall(), write=False
    )
    return [tuple(r) for r in rows]


async def bookings(hub: Harness) -> list[tuple[str, int, int]]:
    rows = await hub.ledger.worker.run(
        lambda db: db.execute("SELECT kind, count, fund_pay_fen FROM bookings ORDER BY kind").fetchall(), write=False
    )
    return [tuple(r) for r in rows]


def outcome_count(hub: Harness, outcome: str) -> float:
    labels = {"insured_region": SICHUAN, "treatment_region": "yangtze-delta", "outcome": outcome}
    return hub.metric("yikatong_settlements_total", labels)


async def test_an_answered_settlement_is_booked_with_its_clearing_entry(hub: Harness) -> None:
    request, region = insured(hub)

    record = await hub.services.settlements.settle(hub.call(), request.credential, request)

    split = split_of(request)
    assert (record.state, record.split, record.insured_region) == (SettlementState.SETTLED, split, SICHUAN)
    assert await bookings(hub) == [("SETTLE", 1, split.fund_pay_fen)]
    assert region.settled_fund() == split.fund_pay_fen
    assert outcome_count(hub, "settled") == 1
    assert hub.calls[-1].region == SICHUAN and hub.calls[-1].venue_region == "yangtze-delta"


async def test_a_refusal_leaves_nothing_behind(hub: Harness) -> None:
    request, region = insured(hub)
    region.fail("settle", NotInsured("not insured any more"))

    with pytest.raises(NotInsured):
        await hub.services.settlements.settle(hub.call(), request.credential, request)

    assert await states(hub) == []
    assert outcome_count(hub, "refused") == 1


async def test_a_settlement_that_never_left_is_sent_again_and_else_dropped(hub: Harness) -> None:
    request, region = insured(hub)
    attempts = next(r for r in hub.config.regions if r.region_id == SICHUAN).resilience.max_attempts
    region.fail("settle", RegionUnavailable(SICHUAN, "connection refused"), times=attempts + 1)

    with pytest.raises(RegionUnavailable):  # every attempt refused: the guard retried, then gave up
        await hub.services.settlements.settle(hub.call(), request.credential, request)
    assert await states(hub) == []
    assert region.calls.count("settle") == attempts

    record = await hub.services.settlements.settle(
        hub.call(), request.credential, request
    )  # one more refusal, then it gets through
    assert record.state is SettlementState.SETTLED
    assert region.calls.count("settle") == attempts + 2


async def test_an_unknown_outcome_that_the_region_settled_is_booked(hub: Harness) -> None:
    request, region = insured(hub)
    region.fail("settle", RegionTimeout(SICHUAN, "no answer"), after=True)

    record = await hub.services.settlements.settle(hub.call(), request.credential, request)

    assert record.state is SettlementState.SETTLED
    assert region.calls.count("settlement_outcome") == 1
    assert await bookings(hub) == [("SETTLE", 1, split_of(request).fund_pay_fen)]


async def test_an_unknown_outcome_the_region_does_not_know_is_voided_and_corrected(hub: Harness) -> None:
    request, region = insured(hub)
    region.fail("settle", RegionTimeout(SICHUAN, "no answer"))

    with pytest.raises(SettlementOutcomeUnknown):
        await hub.services.settlements.settle(hub.call(), request.credential, request)

    assert await states(hub) == [("req-1", "CORRECTION_PENDING")]
    assert await hub.services.outbox.deliver_due() == 1
    assert request.request_id in region.corrected
    assert await states(hub) == [("req-1", "CORRECTED")]
    assert await bookings(hub) == []
    with pytest.raises(StoredRefusal) as replayed:  # the same id is answered the same
        await hub.services.settlements.settle(hub.call(), request.credential, request)
    assert replayed.value.reason == "SETTLEMENT_OUTCOME_UNKNOWN"


async def test_a_caller_that_gives_up_mid_call_leaves_a_correction(hub: Harness) -> None:
    request, region = insured(hub)
    held = region.hold("settle")
    settling = asyncio.create_task(hub.services.settlements.settle(hub.call(), request.credential, request))
    await region.reached("settle")

    settling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settling
    held.set()

    assert await states(hub) == [("req-1", "CORRECTION_PENDING")]
    assert outcome_count(hub, "outcome_unknown") == 1


async def test_an_unbalanced_split_is_refused_corrected_and_never_booked(hub: Harness) -> None:
    request, region = insured(hub)
    region.broken_split = True

    with pytest.raises(RegionSplitInvalid) as refused:
        await hub.services.settlements.settle(hub.call(), request.credential, request)

    assert "total != fund_pay + account_pay + cash_pay" in refused.value.message
    assert await states(hub) == [("req-1", "CORRECTION_PENDING")]
    assert await bookings(hub) == []
    assert outcome_count(hub, "split_invalid") == 1


async def test_one_request_id_settles_once_and_another_bill_under_it_is_refused(hub: Harness) -> None:
    request, region = insured(hub)

    first = await hub.services.settlements.settle(hub.call(), request.credential, request)
    again = await hub.services.settlements.settle(hub.call(), request.credential, request)
    with pytest.raises(IdempotencyKeyReused):
        await hub.services.settlements.settle(hub.call(), request.credential, bill_with_amount(request, 5_000))

    assert again == first
    assert region.calls.count("settle") == 1


def bill_with_amount(request: domain.Bill, amount: int) -> domain.Bill:
    line = replace(request.lines[0], unit_price_fen=amount, amount_fen=amount)
    return replace(request, lines=(line,))


async def test_concurrent_settles_with_one_id_reach_the_region_once(hub: Harness) -> None:
    request, region = insured(hub)

    results = await asyncio.gather(
        *(hub.services.settlements.settle(hub.call(), request.credential, request) for _ in range(20)),
        return_exceptions=True,
    )

    settled = [r for r in results if not isinstance(r, BaseException)]
    assert settled and all(r == settled[0] for r in settled)
    assert all(getattr(r, "reason", "") == "REQUEST_IN_PROGRESS" for r in results if isinstance(r, BaseException))
    assert region.calls.count("settle") == 1


async def test_a_reversal_is_booked_negative_once(hub: Harness) -> None:
    request, region = insured(hub)
    record = await hub.services.settlements.settle(hub.call(), request.credential, request)

    reversed_ = await hub.services.reversals.reverse(hub.call(), ReverseRequest("rev-1", record.settlement_id, "撤销"))
    with pytest.raises(SettlementNotSettled):
        await hub.services.reversals.reverse(hub.call(), ReverseRequest("rev-2", record.settlement_id, "撤销"))

    fund = split_of(request).fund_pay_fen
    assert reversed_.state is SettlementState.REVERSED
    assert await bookings(hub) == [("REVERSE", -1, -fund), ("SETTLE", 1, fund)]
    assert region.settled_fund() == 0


async def test_a_reversal_whose_answer_was_lost_is_booked_from_the_regions_state(hub: Harness) -> None:
    request, region = insured(hub)
    record = await hub.services.settlements.settle(hub.call(), request.credential, request)
    region.fail("reverse_settlement", RegionTimeout(SICHUAN, "no answer"), after=True)

    reversed_ = await hub.services.reversals.reverse(hub.call(), ReverseRequest("rev-1", record.settlement_id, ""))

    assert reversed_.state is SettlementState.REVERSED
    assert region.settled_fund() == 0


async def test_a_voided_request_id_is_never_settled_again(hub: Harness) -> None:
    request, region = insured(hub)
    region.fail("settle", RegionTimeout(SICHUAN, "no answer"))
    with pytest.raises(SettlementOutcomeUnknown):
        await hub.services.settlements.settle(hub.call(), request.credential, request)
    await hub.services.outbox.deliver_due()

    with pytest.raises(SettlementCorrected):
        await region.settle(request, timeout=1)


async def test_a_settlement_takes_two_ledger_commits_the_intent_and_the_booking(hub: Harness) -> None:
    request, _ = insured(hub)
    before = hub.ledger.worker.commits

    await hub.services.settlements.settle(hub.call(), request.credential, request)

    assert hub.ledger.worker.commits - before == 2  # claim + intent, then booking + answer (+ their audit records)
    rows = await hub.ledger.worker.run(lambda db: db.execute("SELECT reason FROM audit").fetchall(), write=False)
    assert [r[0] for r in rows] == ["SETTLED"]


@pytest.mark.parametrize("reuse_seconds", [0, 5])
async def test_a_settlement_asks_the_issuing_region_for_the_card_unless_told_it_may_reuse_its_answer(
    tmp_path: Path, reuse_seconds: float
) -> None:
    hub = await harness(tmp_path, settlement_card_reuse_seconds=reuse_seconds)
    try:
        request, region = insured(hub)
        asked = region.calls.count

        await hub.services.cards.verify(hub.call(), request.credential, request.treatment_area)  # read at the desk
        await hub.services.settlements.settle(hub.call(), request.credential, request)
        assert asked("get_card") == (1 if reuse_seconds else 2)

        await hub.services.resident.card_changed(request.credential.card_number)  # a change heard of: forgotten
        await hub.services.settlements.settle(hub.call(), request.credential, replace(request, request_id="req-2"))
        assert asked("get_card") == (2 if reuse_seconds else 3)

        hub.clock.advance(reuse_seconds + 1)  # too old to reuse
        await hub.services.settlements.settle(hub.call(), request.credential, replace(request, request_id="req-3"))
        assert asked("get_card") == (3 if reuse_seconds else 4)
    finally:
        await hub.close()
