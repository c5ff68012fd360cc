"""Clearing between provinces through the hub: a mixed workload over every region pair, closing, reconciling."""

from __future__ import annotations

from collections import Counter, defaultdict

import grpc
import pytest

from gateway.api.client import format_report
from gateway.api.status import error_reason
from gateway.periods import day_of, next_period, period_end
from tests.bills import OUTPATIENT, VENUES, insured, ledger_rows, settle_request
from tests.conftest import REGION_IDS, Federation
from yikatong.v1 import clearing_pb2 as cpb
from yikatong.v1 import settlement_pb2 as pb

T = 5


async def settle_everywhere(federation: Federation) -> list[pb.Settlement]:
    """One bill of a person insured in each region, at a venue in each of the nine provinces."""
    settled = []
    for region in REGION_IDS:
        for i, venue in enumerate(VENUES.values()):
            person = insured(federation, region, skip=10 + i)
            request = settle_request(person, venue, visit=OUTPATIENT if i % 2 else pb.VISIT_TYPE_INPATIENT)
            settled.append((await federation.settlement.Settle(request, timeout=T)).settlement)
    return settled


async def reverse(federation: Federation, settlement: pb.Settlement) -> pb.Settlement:
    request = pb.ReverseSettlementRequest(
        request_id=f"rev-{settlement.settlement_id}", settlement_id=settlement.settlement_id
    )
    return (await federation.settlement.ReverseSettlement(request, timeout=T)).settlement


async def report(federation: Federation, period: str) -> cpb.ClearingReport:
    answer = await federation.clearing.GetClearingReport(cpb.GetClearingReportRequest(period=period), timeout=T)
    return answer.report


def expected_pairs(settled: list[pb.Settlement], reversed_: list[pb.Settlement]) -> dict[tuple[str, str], list[int]]:
    pairs: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for s, sign in [*((s, 1) for s in settled), *((s, -1) for s in reversed_)]:
        pair = pairs[(s.insured_area[:2], s.treatment_area[:2])]
        pair[0] += sign
        pair[1] += sign * s.split.fund_pay_fen
    return pairs


async def test_the_report_nets_to_zero_and_equals_settled_less_reversed_fund_payments(federation: Federation) -> None:
    settled = await settle_everywhere(federation)
    reversed_ = [await reverse(federation, s) for s in settled[::4]]
    period = settled[0].period

    got = await report(federation, period)

    assert got.state == cpb.PERIOD_STATE_OPEN
    pairs = expected_pairs(settled, reversed_)
    assert {(p.insured_province, p.treatment_province): [p.count, p.fund_pay_fen] for p in got.pairs} == pairs
    assert sum(p.net_fen for p in got.provinces) == 0 and sum(r.net_fen for r in got.regions) == 0
    fund = sum(s.split.fund_pay_fen for s in settled) - sum(s.split.fund_pay_fen for s in reversed_)
    assert got.fund_pay_fen == fund and got.count == len(settled) - len(reversed_)
    [(ledger_fund,)] = ledger_rows(
        federation.hub.config.ledger_path,
        "SELECT SUM(fund_pay_fen) FROM settlements WHERE state = 'SETTLED'",
    )
    assert ledger_fund == fund
    nets: Counter[str] = Counter()
    for (insured_province, treatment_province), (_, amount) in pairs.items():
        nets[treatment_province] += amount
        nets[insured_province] -= amount
    assert {p.province: p.net_fen for p in got.provinces} == {p: nets[p] for p in nets}
    region_of = federation.hub.federation.region_of_province
    by_region: Counter[str] = Counter()
    for province, net in nets.items():
        by_region[region_of(province)] += net
    assert {r.region: r.net_fen for r in got.regions} == dict(by_region)


async def test_a_closed_period_is_frozen_and_a_late_reversal_lands_in_the_open_period(federation: Federation) -> None:
    settled = await settle_everywhere(federation)
    period = settled[0].period
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await federation.clearing.CloseClearingPeriod(
            cpb.CloseClearingPeriodRequest(request_id="close-early", period=period), timeout=T
        )
    assert (early.value.code(), error_reason(early.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PERIOD_NOT_CLOSABLE",
    )

    clock = federation.hub.clock
    clock.advance(period_end(period) - clock.now() + 3600)  # one hour into the next month
    close = cpb.CloseClearingPeriodRequest(request_id="close-1", period=period)
    closed = (await federation.clearing.CloseClearingPeriod(close, timeout=T)).report
    late = await reverse(federation, settled[5])
    following = next_period(period)

    assert closed.state == cpb.PERIOD_STATE_CLOSED and closed.closed_at
    assert await report(federation, period) == closed  # frozen: the late reversal did not touch it
    assert (await federation.clearing.CloseClearingPeriod(close, timeout=T)).report == closed
    assert (late.period, late.reversal_period) == (period, following)
    opened = await report(federation, following)
    pair = (settled[5].insured_area[:2], settled[5].treatment_area[:2])
    assert opened.state == cpb.PERIOD_STATE_OPEN
    assert [(p.insured_province, p.treatment_province, p.count, p.fund_pay_fen) for p in opened.pairs] == [
        (*pair, -1, -settled[5].split.fund_pay_fen)
    ]
    assert sum(p.net_fen for p in opened.provinces) == 0
    after_close = await federation.settlement.Settle(
        settle_request(insured(federation, "yangtze-delta", skip=40), "500103"), timeout=T
    )
    assert after_close.settlement.period == following


async def test_reconciliation_names_the_differing_settlements(federation: Federation) -> None:
    settled = await settle_everywhere(federation)
    shanghai = [s for s in settled if s.treatment_area == VENUES["31"]]
    reversed_ = await reverse(federation, shanghai[0])
    day = day_of(federation.hub.clock.now())
    theirs = [
        cpb.ReconcileEntry(settlement_id=s.settlement_id, fund_pay_fen=s.split.fund_pay_fen) for s in shanghai[1:]
    ]
    count, fund = len(theirs), sum(e.fund_pay_fen for e in theirs)

    same = await federation.clearing.Reconcile(
        cpb.ReconcileRequest(treatment_area=VENUES["31"], date=day, count=count, fund_pay_fen=fund, entries=theirs),
        timeout=T,
    )
    theirs[0].fund_pay_fen += 1
    off = await federation.clearing.Reconcile(
        cpb.ReconcileRequest(treatment_area="310000", date=day, count=count, fund_pay_fen=fund + 1, entries=theirs),
        timeout=T,
    )
    totals_only = await federation.clearing.Reconcile(
        cpb.ReconcileRequest(treatment_area=VENUES["31"], date=day, count=count + 1, fund_pay_fen=fund), timeout=T
    )

    assert reversed_.state == pb.SETTLEMENT_STATE_REVERSED  # settled and reversed the same day: nets out
    assert (same.matched, list(same.differing_settlement_ids), same.count, same.fund_pay_fen) == (True, [], count, fund)
    assert (off.matched, list(off.differing_settlement_ids)) == (False, [theirs[0].settlement_id])
    assert not totals_only.matched
    assert sorted(totals_only.differing_settlement_ids) == sorted(s.settlement_id for s in shanghai[1:])


async def test_clearing_inputs_are_validated(federation: Federation) -> None:
    for call, field in (
        (federation.clearing.GetClearingReport(cpb.GetClearingReportRequest(period="2026-13"), timeout=T), "period"),
        (
            federation.clearing.Reconcile(cpb.ReconcileRequest(treatment_area="31", date="2026-11-28"), timeout=T),
            "treatment_area",
        ),
        (
            federation.clearing.Reconcile(cpb.ReconcileRequest(treatment_area="310104", date="2026-02-30"), timeout=T),
            "date",
        ),
        (
            federation.clearing.Reconcile(cpb.ReconcileRequest(treatment_area="310104", date="٢٠٢٦-٠١-٠١"), timeout=T),
            "date",
        ),
        (
            federation.clearing.Reconcile(
                cpb.ReconcileRequest(
                    treatment_area="310104",
                    date="2026-11-28",
                    entries=[cpb.ReconcileEntry(settlement_id=f"stl-{i}") for i in range(10_001)],
                ),
                timeout=T,
            ),
            "entries",
        ),
        *(
            (
                federation.clearing.CloseClearingPeriod(
                    cpb.CloseClearingPeriodRequest(request_id=f"close-{i}", period=period), timeout=T
                ),
                "period",
            )
            for i, period in enumerate(("9999-12", "0000-01", "٢٠٢٥-٠١"))
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await call
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert bad.value.details().startswith(field + ":")


async def test_the_report_prints_as_a_table(federation: Federation) -> None:
    settled = await settle_everywhere(federation)
    text = format_report(await report(federation, settled[0].period))
    assert text.splitlines()[0] == f"clearing period {settled[0].period} (OPEN)"
    assert "sichuan-chongqing" in text and "total" in text
