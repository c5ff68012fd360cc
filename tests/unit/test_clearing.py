"""Clearing over the ledger with fake regions: the report, closing a period, reversals after a close, reconciling."""

from __future__ import annotations

import pytest

from adapters import domain
from gateway.domain import ClosePeriod, PeriodState, ReconcileEntry, Reconciliation, ReverseRequest
from gateway.errors import PeriodNotClosable
from gateway.periods import day_of, next_period, period_end, period_of
from tests.unit.fakes import Harness, bill, split_of


async def settle_three(hub: Harness) -> list[domain.Bill]:
    """Bills of a Sichuan, a Shanghai and a Beijing person, settled at hospitals of other provinces."""
    bills = []
    for region_id, venue, amount in (
        ("sichuan-chongqing", "310104", 100_000),
        ("yangtze-delta", "510100", 250_000),
        ("beijing-tianjin-hebei", "510100", 80_000),
    ):
        person = hub.regions[region_id].person(status=domain.CardStatus.NORMAL, insured=True)
        request = bill(person, f"req-{region_id}", venue, amount)
        await hub.services.settlements.settle(hub.call(), request.credential, request)
        bills.append(request)
    return bills


async def test_the_report_has_each_pair_and_nets_summing_to_zero(hub: Harness) -> None:
    bills = await settle_three(hub)

    report = await hub.services.clearing.report(period_of(hub.clock()))

    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for b in bills:
        record = await hub.ledger.settlement_by_request("dev", b.request_id)
        assert record is not None
        pair = (record.insured_area[:2], b.treatment_area[:2])
        count, fund = expected.get(pair, (0, 0))
        expected[pair] = (count + 1, fund + split_of(b).fund_pay_fen)
    assert {(p.insured_province, p.treatment_province): (p.count, p.fund_pay_fen) for p in report.pairs} == expected
    assert report.count == 3 and report.fund_pay_fen == sum(split_of(b).fund_pay_fen for b in bills)
    assert sum(p.net_fen for p in report.provinces) == 0 == sum(r.net_fen for r in report.regions)
    assert report.state is PeriodState.OPEN


async def test_a_period_closes_once_it_has_ended_and_stays_frozen(hub: Harness) -> None:
    await settle_three(hub)
    period = period_of(hub.clock())
    with pytest.raises(PeriodNotClosable):
        await hub.services.clearing.close(hub.call(), ClosePeriod("close-1", period))

    hub.clock.now = period_end(period) + 60
    closed = await hub.services.clearing.close(hub.call(), ClosePeriod("close-2", period))
    person = hub.regions["sichuan-chongqing"].person(status=domain.CardStatus.NORMAL, insured=True)
    record = await hub.ledger.settlement_by_request("dev", "req-sichuan-chongqing")
    assert record is not None
    await hub.services.reversals.reverse(hub.call(), ReverseRequest("rev-1", record.settlement_id, ""))

    assert closed.state is PeriodState.CLOSED and closed.closed_at
    assert await hub.services.clearing.report(period) == closed  # frozen: the reversal went elsewhere
    following = await hub.services.clearing.report(next_period(period))
    assert (following.count, following.fund_pay_fen) == (-1, -split_of(bill(person, "x")).fund_pay_fen)


async def test_reconciliation_names_the_settlements_that_differ(hub: Harness) -> None:
    bills = await settle_three(hub)
    chengdu = [b for b in bills if b.treatment_area == "510100"]
    day = day_of(hub.clock())
    funds = {
        (await hub.ledger.settlement_by_request("dev", b.request_id)).settlement_id: split_of(b).fund_pay_fen  # type: ignore[union-attr]
        for b in chengdu
    }
    entries = tuple(ReconcileEntry(s, f) for s, f in funds.items())

    matched = await hub.services.clearing.reconcile(
        hub.call(), Reconciliation("510100", day, 2, sum(funds.values()), entries)
    )
    first = min(funds)
    wrong = tuple(ReconcileEntry(s, f + (1 if s == first else 0)) for s, f in funds.items())
    differing = await hub.services.clearing.reconcile(
        hub.call(), Reconciliation("510100", day, 2, sum(funds.values()) + 1, wrong)
    )

    assert matched.matched and matched.differing_settlement_ids == ()
    assert not differing.matched and differing.differing_settlement_ids == (first,)
