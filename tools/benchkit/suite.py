"""The benchmark proper: every phase, interleaved over several rounds, and the figures derived from them.

A *phase* is one kind of call (e.g. VerifyCard through the hub) under one load shape: ``calls`` calls from
``concurrency`` callers back to back (throughput), or calls started at a fixed rate (latency). Around each phase
the load generator reads the CPU time of the hub, the proxy, the sandboxes and itself from ``/proc``, and, around
the hub's settlement phases, the hub's ledger counters from its ``/metrics`` (``Meter``; the replicas row,
``replicas``, meters its own processes with it).

Each round runs every phase once, odd rounds in reverse order, so that a pair (hub and its reference) is measured
seconds apart and a drift of the shared machine falls on both sides alike. A figure is the median over rounds of
that figure in each round: a ratio is the median of per-round ratios, an added latency the median of per-round
differences.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .load import Call, Tally, closed_loop, fixed_rate
from .processes import Fleet, cpu_seconds, machine_cpu_seconds, metrics_at
from .workload import JJJ, Workload

Figures = dict[str, float]


@dataclass(frozen=True)
class Settings:
    """How much load, and how it is shaped.

    Attributes:
        calls: calls per throughput phase (settlement phases make half as many, at least one).
        concurrency: callers of a throughput phase.
        rounds: rounds of every phase; figures are medians over them.
        verify_rate: calls per second of the fixed-rate VerifyCard and AuthorizeService phases.
        settle_rate: calls per second of the fixed-rate Settle phases.
        rate_seconds: length of a fixed-rate phase (cut short to ``calls`` calls).
    """

    calls: int = 1500
    concurrency: int = 16
    rounds: int = 3
    verify_rate: float = 200.0
    settle_rate: float = 100.0
    rate_seconds: float = 4.0

    def rate_calls(self, rate: float) -> int:
        return max(1, min(self.calls, round(rate * self.rate_seconds)))


@dataclass(frozen=True)
class Phase:
    """One kind of call under one load shape."""

    name: str
    call: Call
    calls: int
    concurrency: int = 0  # callers back to back; 0 = at ``rate``
    rate: float = 0.0
    ledger: bool = False  # read the hub's ledger counters around it
    seconds: float = math.inf  # no call of a throughput phase starts later


class Meter:
    """CPU seconds of processes, summed by name, and hubs' counters, read before and after a phase.

    Args:
        pids: name → the processes whose CPU time is summed under it (e.g. ``hub`` → every replica).
        admins: the admin URLs of the hubs whose counters are summed; with several, ``served:<i>`` is also the
            number of calls the ``i``-th began (how the kernel spread the connections).
    """

    COUNTERS = (
        "yikatong_ledger_commits_total",
        "yikatong_ledger_writes_total",
        'yikatong_settlements_total{outcome="settled"}',
    )
    SERVED = "grpc_server_started_total"

    def __init__(self, pids: Mapping[str, Sequence[int]], admins: Sequence[str]) -> None:
        self.pids, self.admins = pids, admins

    @classmethod
    def of(cls, fleet: Fleet) -> Meter:
        """Every process of the fleet, and its hub's counters."""
        pids = {
            "hub": [fleet.hub.pid] if fleet.hub else [],
            "proxy": [fleet.proxy.pid] if fleet.proxy else [],
            "loadgen": [os.getpid()],
            **{f"sandbox:{r}": [p.pid] for r, p in fleet.sandboxes.items()},
        }
        return cls(pids, [fleet.hub_admin])

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each group, and of the whole machine (``machine``: the shared machine's other load
        shows there)."""
        groups = {name: sum(map(cpu_seconds, pids)) for name, pids in self.pids.items()}
        return groups | {"machine": machine_cpu_seconds()}

    async def counters(self) -> dict[str, float]:
        hubs = await asyncio.gather(*map(metrics_at, self.admins))
        counters = {name: sum(samples.get(name, 0.0) for samples in hubs) for name in self.COUNTERS}
        if len(hubs) > 1:
            counters |= {f"served:{i}": samples.get(self.SERVED, 0.0) for i, samples in enumerate(hubs)}
        return counters

    async def run(self, phase: Phase) -> tuple[Figures, str]:
        """Run the phase: its rate, latencies, errors, CPU per call of each process, counter deltas; and the first
        error ("" when none)."""
        before = await self.counters() if phase.ledger else {}
        cpu = self.cpu()
        if phase.concurrency:
            tally, seconds = await closed_loop(phase.call, phase.calls, phase.concurrency, seconds=phase.seconds)
        else:
            tally = await fixed_rate(phase.call, phase.rate, phase.calls)
            seconds = phase.calls / phase.rate
        spent = {name: after - cpu[name] for name, after in self.cpu().items()}
        figures = _figures(tally, seconds, spent)
        if phase.ledger:
            after = await self.counters()
            figures |= {name: after[name] - before[name] for name in after}
        return figures, tally.first_error


def _figures(tally: Tally, seconds: float, spent: dict[str, float]) -> Figures:
    calls = max(tally.calls, 1)
    figures: Figures = {
        "calls": tally.calls,
        "errors": tally.errors,
        "per_second": len(tally.latencies) / seconds if seconds > 0 else math.nan,
        "p50_ms": tally.percentile_ms(50),
        "p99_ms": tally.percentile_ms(99),
        "seconds": seconds,
    }
    for name, used in spent.items():
        figures[f"cpu_ms_per_call:{name}"] = used * 1000 / calls
        figures[f"cpu_busy:{name}"] = used / seconds if seconds > 0 else math.nan
    return figures


def phases(work: Workload, settings: Settings) -> list[Phase]:
    """Every phase of a round, pairs side by side."""
    s, c = settings, settings.concurrency
    settle_calls = max(1, s.calls // 2)
    tp = [
        Phase("verify:direct", work.direct_verify(JJJ), s.calls, c),
        Phase("verify:passthrough", work.passthrough_verify(), s.calls, c),
        Phase("verify:hub", work.hub_verify(JJJ), s.calls, c),
    ]
    for region in work.people:
        if region != JJJ:
            tp += [
                Phase(f"verify:direct:{region}", work.direct_verify(region), s.calls, c),
                Phase(f"verify:hub:{region}", work.hub_verify(region), s.calls, c),
            ]
    tp += [
        Phase("authorize:hub", work.hub_authorize(), s.calls, c),
        Phase("settle:direct", work.direct_settle(), settle_calls, c),
        Phase("settle:hub", work.hub_settle(), settle_calls, c, ledger=True),
    ]
    verify_n, settle_n = s.rate_calls(s.verify_rate), s.rate_calls(s.settle_rate)
    at_rate = [
        Phase("verify:passthrough@rate", work.passthrough_verify(), verify_n, rate=s.verify_rate),
        Phase("verify:hub@rate", work.hub_verify(JJJ), verify_n, rate=s.verify_rate),
        Phase("authorize:hub@rate", work.hub_authorize(), verify_n, rate=s.verify_rate),
        Phase("settle:direct@rate", work.direct_settle(), settle_n, rate=s.settle_rate),
        Phase("settle:hub@rate", work.hub_settle(), settle_n, rate=s.settle_rate, ledger=True),
    ]
    return tp + at_rate


Progress = Callable[[str], None]


@dataclass
class Measured:
    """Each phase's figures, one entry per round, and the first error of each phase that had one."""

    rounds: dict[str, list[Figures]]
    first_errors: dict[str, str]


async def measure(work: Workload, settings: Settings, progress: Progress) -> Measured:
    """Warm every phase up, then run the rounds."""
    meter = Meter.of(work.fleet)
    plan = [(phase, meter) for phase in phases(work, settings)]
    measured = Measured({phase.name: [] for phase, _ in plan}, {})
    await run_rounds(plan, settings.rounds, settings.concurrency, measured, progress)
    return measured


async def run_rounds(
    plan: Sequence[tuple[Phase, Meter]], rounds: int, concurrency: int, measured: Measured, progress: Progress
) -> None:
    """Warm every phase of ``plan`` up, then run it ``rounds`` times (odd rounds reversed), each phase metered by
    its meter, into ``measured``."""
    for phase, _ in plan:  # connections, caches, first-call costs: none of it in a measured phase
        await closed_loop(phase.call, min(phase.calls, 100), min(concurrency, 4))
    for r in range(rounds):
        for phase, meter in plan if r % 2 == 0 else reversed(plan):
            figures, first_error = await meter.run(phase)
            measured.rounds.setdefault(phase.name, []).append(figures)
            if first_error:
                measured.first_errors.setdefault(phase.name, first_error)
            progress(f"round {r + 1}/{rounds} {phase.name:<36} {_progress_line(figures)}")


def _progress_line(f: Figures) -> str:
    cpu = " / ".join(
        f"{name} {f[key]:5.2f}" for name in ("hub", "proxy", "postgres") if (key := f"cpu_ms_per_call:{name}") in f
    )
    served = [f"{v:.0f}" for k, v in f.items() if k.startswith("served:")]
    return (
        f"{f['per_second']:8.0f}/s  p50 {f['p50_ms']:6.2f} ms  p99 {f['p99_ms']:6.2f} ms  {cpu} CPU ms per call"
        + (f"  calls by replica {'/'.join(served)}" if served else "")
        + (f"  errors {f['errors']:.0f}" if f["errors"] else "")
    )


# --- figures of the report ---------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return round(statistics.median(kept), 3) if kept else math.nan


class Rounds:
    """Per-round figures of every phase, and medians over rounds of what is derived from them."""

    def __init__(self, rounds: dict[str, list[Figures]]) -> None:
        self.rounds = rounds

    def of(self, phase: str, figure: str) -> float:
        """The median over rounds; NaN when no round has the figure (e.g. CPU of processes out of sight)."""
        return _median([f.get(figure, math.nan) for f in self.rounds[phase]])

    def ratio(self, top: tuple[str, str], bottom: tuple[str, str]) -> float:
        pairs = zip(self.rounds[top[0]], self.rounds[bottom[0]], strict=True)
        return _median([t[top[1]] / b[bottom[1]] if b[bottom[1]] else math.nan for t, b in pairs])

    def difference(self, top: tuple[str, str], bottom: tuple[str, str]) -> float:
        pairs = zip(self.rounds[top[0]], self.rounds[bottom[0]], strict=True)
        return _median([t[top[1]] - b[bottom[1]] for t, b in pairs])

    def total(self, phases: tuple[str, ...], figure: str) -> float:
        return sum(f[figure] for p in phases for f in self.rounds[p])


def report(measured: Measured, settings: Settings, regions: list[str]) -> dict[str, Any]:
    """``var/bench.json``'s figures (see ``tools/bench.py``) from the per-round figures of every phase."""
    rounds = measured.rounds
    r = Rounds(rounds)
    hub_cpu, proxy_cpu = "cpu_ms_per_call:hub", "cpu_ms_per_call:proxy"
    verify = {
        "direct_per_second": r.of("verify:direct", "per_second"),
        "passthrough_per_second": r.of("verify:passthrough", "per_second"),
        "hub_per_second": r.of("verify:hub", "per_second"),
        "ratio_to_passthrough": r.ratio(("verify:hub", "per_second"), ("verify:passthrough", "per_second")),
        "passthrough_cpu_ms_per_call": r.of("verify:passthrough", proxy_cpu),
        "hub_cpu_ms_per_call": r.of("verify:hub", hub_cpu),
        "cpu_ratio_to_passthrough": r.ratio(("verify:hub", hub_cpu), ("verify:passthrough", proxy_cpu)),
        "hub_cpu_busy": r.of("verify:hub", "cpu_busy:hub"),
        "loadgen_cpu_busy": r.of("verify:hub", "cpu_busy:loadgen"),
        "rate_per_second": settings.verify_rate,
        "passthrough_p50_ms": r.of("verify:passthrough@rate", "p50_ms"),
        "passthrough_p99_ms": r.of("verify:passthrough@rate", "p99_ms"),
        "hub_p50_ms": r.of("verify:hub@rate", "p50_ms"),
        "hub_p99_ms": r.of("verify:hub@rate", "p99_ms"),
        "p50_added_ms": r.difference(("verify:hub@rate", "p50_ms"), ("verify:passthrough@rate", "p50_ms")),
        "p99_added_ms": r.difference(("verify:hub@rate", "p99_ms"), ("verify:passthrough@rate", "p99_ms")),
        "regions": {
            region: {
                "direct_per_second": r.of(direct, "per_second"),
                "hub_per_second": r.of(hub, "per_second"),
                "ratio_to_direct": r.ratio((hub, "per_second"), (direct, "per_second")),
                "hub_cpu_ms_per_call": r.of(hub, hub_cpu),
            }
            for region in regions
            for direct, hub in [_region_phases(region)]
        },
    }
    authorize = {
        "hub_per_second": r.of("authorize:hub", "per_second"),
        "hub_cpu_ms_per_call": r.of("authorize:hub", hub_cpu),
        "rate_per_second": settings.verify_rate,
        "hub_p50_ms": r.of("authorize:hub@rate", "p50_ms"),
        "hub_p99_ms": r.of("authorize:hub@rate", "p99_ms"),
    }
    ledger = ("settle:hub", "settle:hub@rate")
    settled = r.total(ledger, 'yikatong_settlements_total{outcome="settled"}')
    settle = {
        "direct_per_second": r.of("settle:direct", "per_second"),
        "hub_per_second": r.of("settle:hub", "per_second"),
        "ratio_to_direct": r.ratio(("settle:hub", "per_second"), ("settle:direct", "per_second")),
        "hub_cpu_ms_per_call": r.of("settle:hub", hub_cpu),
        "hub_cpu_busy": r.of("settle:hub", "cpu_busy:hub"),
        "settlements": settled,
        "commits_per_settlement": round(r.total(ledger, "yikatong_ledger_commits_total") / settled, 3)
        if settled
        else math.nan,
        "writes_per_settlement": round(r.total(ledger, "yikatong_ledger_writes_total") / settled, 3)
        if settled
        else math.nan,
        "rate_per_second": settings.settle_rate,
        "direct_p50_ms": r.of("settle:direct@rate", "p50_ms"),
        "direct_p99_ms": r.of("settle:direct@rate", "p99_ms"),
        "hub_p50_ms": r.of("settle:hub@rate", "p50_ms"),
        "hub_p99_ms": r.of("settle:hub@rate", "p99_ms"),
        "p50_added_ms": r.difference(("settle:hub@rate", "p50_ms"), ("settle:direct@rate", "p50_ms")),
        "p99_added_ms": r.difference(("settle:hub@rate", "p99_ms"), ("settle:direct@rate", "p99_ms")),
    }
    errors = errors_of(measured)
    return {"verify": verify, "authorize": authorize, "settle": settle, "errors": errors, "phases": rounds}


def errors_of(measured: Measured) -> dict[str, dict[str, Any]]:
    """Phase → how many of its calls failed, over every round, and the first failure."""
    r = Rounds(measured.rounds)
    return {
        name: {"errors": int(r.total((name,), "errors")), "first": first}
        for name, first in measured.first_errors.items()
    }


def _region_phases(region: str) -> tuple[str, str]:
    if region == JJJ:
        return "verify:direct", "verify:hub"
    return f"verify:direct:{region}", f"verify:hub:{region}"
