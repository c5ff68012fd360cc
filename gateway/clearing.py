"""Clearing between provinces (DESIGN §4.6): the period report, closing a period, and reconciliation.

Every settled fund payment is a debt of the insured province to the treatment province. The ledger books a
settlement (+1, +fund) into the period open when it settles and a reversal (−1, −fund) into the period open
when it is reversed. A province's net position is what it is owed as a treatment place less what it owes as
an insured place, so the nets of every province — and of every region — sum to exactly 0.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from google.protobuf import json_format

from adapters.errors import PeriodNotClosable
from gateway.federation import Federation
from gateway.ledger import Booking, LedgerStore
from gateway.periods import period_end, stamp
from yikatong.v1 import clearing_pb2 as pb


def build_report(period: str, bookings: Sequence[Booking], region_of: Callable[[str], str]) -> pb.ClearingReport:
    """The pair matrix and net positions of a period's bookings (state left for the caller to set)."""
    pairs: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    provinces: dict[str, int] = defaultdict(int)
    for b in bookings:
        pair = pairs[(b.insured_province, b.treatment_province)]
        pair[0] += b.count
        pair[1] += b.fund_pay_fen
        provinces[b.treatment_province] += b.fund_pay_fen
        provinces[b.insured_province] -= b.fund_pay_fen
    regions: dict[str, int] = defaultdict(int)
    for province, net in provinces.items():
        regions[region_of(province) or "(unfederated)"] += net
    return pb.ClearingReport(
        period=period,
        pairs=[
            pb.ClearingPair(insured_province=i, treatment_province=t, count=c, fund_pay_fen=f)
            for (i, t), (c, f) in sorted(pairs.items())
        ],
        provinces=[pb.ProvincePosition(province=p, net_fen=n) for p, n in sorted(provinces.items())],
        regions=[pb.RegionPosition(region=r, net_fen=n) for r, n in sorted(regions.items())],
        count=sum(c for c, _ in pairs.values()),
        fund_pay_fen=sum(f for _, f in pairs.values()),
    )


class Clearing:
    """Clearing reports and period closing over the ledger.

    Args:
        ledger: the bookings and closed periods.
        federation: which region each province belongs to.
        clock: wall time; a period may be closed once it has ended.
    """

    def __init__(self, ledger: LedgerStore, federation: Federation, clock: Callable[[], float] = time.time) -> None:
        self.ledger, self.federation, self.clock = ledger, federation, clock

    async def report(self, period: str) -> pb.ClearingReport:
        """The frozen report of a closed period, or the running figures of an open one."""
        closed = await self.ledger.closed_report(period)
        if closed is not None:
            return _thaw(*closed)
        report = build_report(period, await self.ledger.bookings(period), self.federation.region_of_province)
        report.state = pb.PERIOD_STATE_OPEN
        return report

    async def close(self, period: str) -> pb.ClearingReport:
        """Freeze a period that has ended; closing it again returns the same frozen report."""
        now = self.clock()
        if now < period_end(period):
            raise PeriodNotClosable(period, "has not ended yet")
        report = build_report(period, await self.ledger.bookings(period), self.federation.region_of_province)
        report.state = pb.PERIOD_STATE_CLOSED
        report.closed_at = stamp(now)
        return _thaw(*await self.ledger.close_period(period, json_format.MessageToJson(report), now))

    async def reconcile(self, request: pb.ReconcileRequest) -> pb.ReconcileResponse:
        """对账 of one treatment area and day; ``request`` is already validated."""
        bookings = await self.ledger.bookings_on(request.date, request.treatment_area)
        net: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for b in bookings:
            net[b.settlement_id][0] += b.count
            net[b.settlement_id][1] += b.fund_pay_fen
        # A settlement settled and reversed on the same day leaves nothing to compare.
        ours = {s: fund for s, (c, fund) in net.items() if c or fund}
        count, fund = sum(b.count for b in bookings), sum(b.fund_pay_fen for b in bookings)
        matched = count == request.count and fund == request.fund_pay_fen
        if request.entries:
            theirs = {e.settlement_id: e.fund_pay_fen for e in request.entries}
            differing = sorted(s for s in ours.keys() | theirs.keys() if ours.get(s) != theirs.get(s))
            matched = matched and not differing
        else:
            differing = [] if matched else sorted(ours)
        return pb.ReconcileResponse(matched=matched, differing_settlement_ids=differing, count=count, fund_pay_fen=fund)


def _thaw(closed_at: float, frozen: str) -> pb.ClearingReport:
    report = json_format.Parse(frozen, pb.ClearingReport())
    report.closed_at = report.closed_at or stamp(closed_at)
    return report
