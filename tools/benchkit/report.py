"""What a run prints and writes: the figures as tables a person reads, and as JSON (NaN written as null)."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The targets issue 14 sets for the hub, shown beside each figure (for information: the benchmark asserts nothing).
TARGETS: dict[str, tuple[str, float]] = {
    "verify.ratio_to_passthrough": (">=", 0.8),
    "verify.cpu_ratio_to_passthrough": ("<=", 1.5),
    "verify.p50_added_ms": ("<=", 1.5),
    "settle.ratio_to_direct": (">=", 0.2),
    "settle.commits_per_settlement": ("<=", 2.0),
    "settle.p50_added_ms": ("<=", 5.0),
}
HEADLINE = (
    "verify.passthrough_per_second",
    "verify.hub_per_second",
    "verify.ratio_to_passthrough",
    "verify.passthrough_cpu_ms_per_call",
    "verify.hub_cpu_ms_per_call",
    "verify.cpu_ratio_to_passthrough",
    "verify.p50_added_ms",
    "settle.direct_per_second",
    "settle.hub_per_second",
    "settle.ratio_to_direct",
    "settle.commits_per_settlement",
    "settle.p50_added_ms",
)


def lookup(results: dict[str, Any], dotted: str) -> Any:
    """``lookup(r, "verify.hub_per_second")`` is ``r["verify"]["hub_per_second"]``."""
    value: Any = results
    for key in dotted.split("."):
        value = value[key]
    return value


def _num(value: float | None, width: int = 9, places: int = 2) -> str:
    return f"{'-':>{width}}" if value is None or math.isnan(value) else f"{value:{width}.{places}f}"


def _target(key: str, value: float) -> str:
    if key not in TARGETS:
        return ""
    op, limit = TARGETS[key]
    met = not math.isnan(value) and (value >= limit if op == ">=" else value <= limit)
    return f"{op} {limit:<5g} {'met' if met else 'NOT MET'}"


def bench_table(results: dict[str, Any]) -> str:
    """The benchmark's figures: the headline keys of ``var/bench.json`` with the issue's targets, then detail."""
    v, a, s, run = results["verify"], results["authorize"], results["settle"], results["run"]
    out: list[str] = []
    add: Callable[[str], None] = out.append
    add(
        f"{run['rounds']} rounds (medians); throughput: {run['calls']} calls, {run['concurrency']} callers per phase;"
        f" latency at {v['rate_per_second']:g}/s (VerifyCard, AuthorizeService) and {s['rate_per_second']:g}/s"
        f" (Settle); load average {run['load_average_before']:.2f} before, {run['load_average_after']:.2f} after"
    )
    add("")
    add(f"{'figure (var/bench.json)':<38}{'value':>10}   issue 14 target (the hub's)")
    for key in HEADLINE:
        value = lookup(results, key)
        add(f"{key:<38}{_num(value, 10)}   {_target(key, value)}")
    add("")
    add(f"{'VerifyCard, beijing-tianjin-hebei':<38}{'calls/s':>10}{'CPU ms/call':>13}{'p50 ms':>9}{'p99 ms':>9}")
    add(f"{'  direct adapter (no hub)':<38}{_num(v['direct_per_second'], 10, 0)}")
    add(
        f"{'  pass-through proxy, mTLS':<38}{_num(v['passthrough_per_second'], 10, 0)}"
        f"{_num(v['passthrough_cpu_ms_per_call'], 13, 3)}{_num(v['passthrough_p50_ms'])}{_num(v['passthrough_p99_ms'])}"
    )
    add(
        f"{'  hub, mTLS':<38}{_num(v['hub_per_second'], 10, 0)}{_num(v['hub_cpu_ms_per_call'], 13, 3)}"
        f"{_num(v['hub_p50_ms'])}{_num(v['hub_p99_ms'])}"
    )
    add(f"  (hub process busy {v['hub_cpu_busy']:.2f} CPU, load generator {v['loadgen_cpu_busy']:.2f} CPU)")
    add(f"{'VerifyCard through the hub, by region':<38}{'direct/s':>10}{'hub/s':>10}{'hub/direct':>12}{'CPU ms':>9}")
    for region, figures in v["regions"].items():
        add(
            f"  {region:<36}{_num(figures['direct_per_second'], 10, 0)}{_num(figures['hub_per_second'], 10, 0)}"
            f"{_num(figures['ratio_to_direct'], 12)}{_num(figures['hub_cpu_ms_per_call'], 9, 3)}"
        )
    add(
        f"{'AuthorizeService, hub, mTLS':<38}{_num(a['hub_per_second'], 10, 0)}{_num(a['hub_cpu_ms_per_call'], 13, 3)}"
        f"{_num(a['hub_p50_ms'])}{_num(a['hub_p99_ms'])}"
    )
    add(f"{'Settle, Shanghai hospital':<38}{'calls/s':>10}{'CPU ms/call':>13}{'p50 ms':>9}{'p99 ms':>9}")
    add(f"{'  direct adapter (no hub)':<38}{_num(s['direct_per_second'], 10, 0)}{'':13}{_num(s['direct_p50_ms'])}"
        f"{_num(s['direct_p99_ms'])}")  # fmt: skip
    add(
        f"{'  hub, mTLS':<38}{_num(s['hub_per_second'], 10, 0)}{_num(s['hub_cpu_ms_per_call'], 13, 3)}"
        f"{_num(s['hub_p50_ms'])}{_num(s['hub_p99_ms'])}"
    )
    add(
        f"  ledger: {s['commits_per_settlement']:.2f} commits and {s['writes_per_settlement']:.2f} writes per"
        f" settlement over {s['settlements']:.0f} settlements"
    )
    if "replicas" in results:
        out += replicas_table(results["replicas"], run["cpus"])
    for phase, error in results["errors"].items():
        add(f"ERRORS in {phase}: {error['errors']}, the first: {error['first']}")
    return "\n".join(out)


def replicas_table(row: dict[str, Any], cpus: int) -> list[str]:
    """The replicas row (``tools/benchkit/replicas.py``): a line per ``replicas.<row>`` of ``var/bench.json``, and
    what the figures say of a bigger machine."""
    if "skipped" in row:
        return [f"replicas row skipped: {row['skipped']}"]
    out = [
        f"{'Replicas, ' + str(row['connections']) + ' connections':<26}{'verify/s':>9}{'×sqlite':>8}{'CPU ms':>8}"
        f"{'settle/s':>10}{'×sqlite':>8}{'CPU ms':>8}{'PG ms':>7}{'commits':>9}{'busiest':>9}{'errors':>8}"
    ]
    for name in ["sqlite_1", *(f"postgres_{n}" for n in row["counts"])]:
        f = row[name]
        out.append(
            f"  replicas.{name:<15}{_num(f['verify_per_second'], 9, 0)}{_num(f.get('verify_ratio_to_sqlite'), 8)}"
            f"{_num(f['verify_cpu_ms_per_call'], 8)}{_num(f['settle_per_second'], 10, 0)}"
            f"{_num(f.get('settle_ratio_to_sqlite'), 8)}{_num(f['settle_cpu_ms_per_call'], 8)}"
            f"{_num(f.get('postgres_cpu_ms_per_settle'), 7)}{_num(f['commits_per_settlement'], 9)}"
            f"{_num(f.get('busiest_replica_share'), 9)}{f['verify_errors'] + f['settle_errors']:8.0f}"
        )
    return out + _replicas_note(row, cpus)


def _replicas_note(row: dict[str, Any], cpus: int) -> list[str]:
    """Where the CPUs went with the most replicas, and what a CPU per replica would give."""
    n = max(row["counts"])
    most = row[f"postgres_{n}"]
    sound = [k for k in row["counts"] if not row[f"postgres_{k}"]["settle_errors"]]
    note = [
        "(×sqlite: calls/s over those of the SQLite hub measured beside it; CPU ms: every replica's, per call; PG ms:"
        " PostgreSQL's backends per Settle; busiest: the busiest replica's share of the calls.)",
        f"With {n} replicas, VerifyCard kept {most['verify_machine_cpu_busy']:.2f} of the machine's {cpus} CPUs busy:"
        f" {most['verify_hub_cpu_busy']:.2f} in the hubs, {most['loadgen_cpu_busy']:.2f} in the load generator, the"
        " rest in the sandboxes, PostgreSQL and whatever else runs here.",
    ]
    per_cpu = f"A hub CPU serves {_per_cpu(most['verify_cpu_ms_per_call'])} VerifyCard/s (postgres_{n})"
    if sound:
        k = max(sound)
        settle = row[f"postgres_{k}"]
        pg_ms = settle["postgres_cpu_ms_per_settle"]
        per_cpu += f" and {_per_cpu(settle['settle_cpu_ms_per_call'])} Settle/s (postgres_{k})"
        if pg_ms:
            per_cpu += f", a PostgreSQL CPU {_per_cpu(pg_ms)} Settle/s"
    note.append(
        per_cpu + ": with a CPU for each replica and the callers elsewhere, n replicas would serve about n times a"
        " hub CPU's figure, as far as the connections spread (busiest) and the shared ledger keeps up."
    )
    failing = [f"postgres_{k}" for k in row["counts"] if k not in sound]
    if failing:
        note.append(
            f"Settle FAILED on {', '.join(failing)} (ERRORS below): its figures there show replicas in each other's"
            " way, not what they can do."
        )
    return [textwrap.fill(line, 118, initial_indent="  ", subsequent_indent="  ") for line in note]


def _per_cpu(cpu_ms: float) -> str:
    """The calls a CPU serves at ``cpu_ms`` a call; "n/a" when a phase was too short for /proc's clock ticks to
    see any CPU time (a tiny run)."""
    return f"{1000 / cpu_ms:.0f}" if cpu_ms else "n/a"


def soak_table(results: dict[str, Any]) -> str:
    """The soak's memory and latency figures."""
    s = results["soak"]
    return "\n".join(
        (
            f"soak: {s['seconds']:g} s of mixed load at {s['rate_per_second']:g}/s, {s['calls']} calls,"
            f" {s['errors']} errors; warm-up {s['warm_up_seconds']:g} s",
            f"hub RSS: {s['rss_start_kib'] / 1024:.1f} MiB at start, {s['rss_after_warm_up_kib'] / 1024:.1f} MiB"
            f" after warm-up, {s['rss_end_kib'] / 1024:.1f} MiB at the end:"
            f" {s['rss_growth_after_warm_up_pct']:+.1f} % after warm-up (issue 14 target: under 10 % over 10 minutes)",
            f"p99 after warm-up: {s['p99_first_ms']:.2f} ms in the first window, {s['p99_last_ms']:.2f} ms in the"
            f" last, {s['p99_max_ms']:.2f} ms at most",
        )
    )


def write_json(results: dict[str, Any], path: Path) -> None:
    """Write ``results`` as JSON; NaN (a figure that could not be measured) becomes null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(results), indent=2, ensure_ascii=False) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
