"""Clearing between provinces (DESIGN §4.6): the period report, closing a period, and reconciliation.

Every settled fund payment is a debt of the insured province to the treatment province. The ledger books a
settlement (+1, +fund) into the period open when it settles and a reversal (−1, −fund) into the period open
when it is reversed, and adds each booking to its period's per-pair totals in the same transaction, so a
report reads the totals, never every settlement. A province's net position is what it is owed as a treatment
place less what it owes as an insured place, so the nets of every province — and of every region — sum to
exactly 0. A closed period's report is frozen in the ledger as canonical JSON (``gateway.canonical``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace

from gateway import canonical
from gateway.domain import (
    ClearingPair,
    ClearingReport,
    ClosePeriod,
    PeriodState,
    Position,
    ReconcileResult,
    Reconciliation,
)
from gateway.errors import CallerOutOfScope, PeriodNotClosable
from gateway.ledger import LedgerStore
from gateway.periods import period_end, stamp
from gateway.services.audit import Auditor
from gateway.services.call import Call
from gateway.services.idempotency import Idempotency


def build_report(
    period: str, totals: Sequence[tuple[str, str, int, int]], region_of: Callable[[str], str], state: PeriodState
) -> ClearingReport:
    """The pair matrix and net positions of a period's pair totals ``(insured, treatment, count, fund fen)``."""
    provinces: dict[str, int] = defaultdict(int)
    for insured, treatment, _, fund in totals:
        provinces[treatment] += fund
        provinces[insured] -= fund
    regions: dict[str, int] = defaultdict(int)
    for province, net in provinces.items():
        regions[region_of(province) or "(unfederated)"] += net
    return ClearingReport(
        period=period,
        state=state,
        pairs=tuple(ClearingPair(*pair) for pair in sorted(totals)),
        provinces=tuple(Position(p, n) for p, n in sorted(provinces.items())),
        regions=tuple(Position(r, n) for r, n in sorted(regions.items())),
        count=sum(pair[2] for pair in totals),
        fund_pay_fen=sum(pair[3] for pair in totals),
    )


class Clearing:
    """Clearing reports and period closing over the ledger.

    Args:
        ledger: the bookings and closed periods.
        idempotency: runs each period close once per request id.
        auditor: records each period closed.
        region_of: the region of a two-digit province code ("" when none).
        clock: wall time; a period may be closed once it has ended.
    """

    def __init__(
        self,
        ledger: LedgerStore,
        idempotency: Idempotency,
        auditor: Auditor,
        region_of: Callable[[str], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger, self.idempotency, self.region_of, self.clock = ledger, idempotency, region_of, clock
        self.auditor = auditor

    async def report(self, period: str) -> ClearingReport:
        """The frozen report of a closed period, or the running figures of an open one."""
        closed = await self.ledger.closed_report(period)
        if closed is not None:
            return canonical.decode(ClearingReport, closed)
        return build_report(period, await self.ledger.clearing_totals(period), self.region_of, PeriodState.OPEN)

    async def close(self, call: Call, request: ClosePeriod) -> ClearingReport:
        """Freeze a period that has ended; closing it again returns the same frozen report."""

        async def produce() -> ClearingReport:
            now = self.clock()
            if now < period_end(request.period):
                raise PeriodNotClosable(request.period, "has not ended yet")
            totals = await self.ledger.clearing_totals(request.period)
            report = build_report(request.period, totals, self.region_of, PeriodState.CLOSED)
            frozen = canonical.encode(replace(report, closed_at=stamp(now))).decode()
            amounts = {"count": report.count, "fund_pay_fen": report.fund_pay_fen}
            entry = self.auditor.entry(call, "OK", "CLOSED", objects={"period": request.period}, amounts=amounts)
            return canonical.decode(ClearingReport, await self.ledger.close_period(request.period, frozen, now, entry))

        return await self.idempotency.run(call, "CloseClearingPeriod", request, produce, ClearingReport)

    async def reconcile(self, call: Call, request: Reconciliation) -> ReconcileResult:
        """对账 of one treatment area and day: anywhere for the clearing role; a hospital reconciles its own
        settlements in its own areas."""
        everyone = call.caller.has("clearing")
        if not everyone and not call.caller.covers(request.treatment_area):
            raise CallerOutOfScope(call.participant, "treatment_area", request.treatment_area)
        participant = None if everyone else call.participant
        bookings = await self.ledger.bookings_on(request.date, request.treatment_area, participant)
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
        return ReconcileResult(matched, tuple(differing), count, fund)
