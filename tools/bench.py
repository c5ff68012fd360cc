"""``make bench``: what the hub costs, measured against references in the same run, each in its own process.

The load generator (this process) starts, each as a process of its own: the three regions' sandboxes
(``yikatong sandbox serve``), the hub (``yikatong serve``, mutual TLS, a fresh data directory and development PKI)
and a bare gRPC pass-through proxy (``tools/passthrough.py``, mutual TLS with the hub's certificate) in front of the
Beijing–Tianjin–Hebei sandbox's native gRPC service. It then runs, interleaved over ``--rounds`` rounds:

* VerifyCard — the JJJ adapter calling its sandbox directly; the native ``QueryCard`` through the pass-through
  proxy; ``VerifyCard`` through the hub as the Beijing museum; and the other two regions' adapters and hub calls;
* AuthorizeService through the hub, at each region's own venue;
* Settle — the insured region's adapter settling directly at its sandbox; ``Settle`` of the same bill through the
  hub as the Shanghai hospital;

each with ``--concurrency`` callers for ``--calls`` calls (throughput), then at a fixed rate (p50 and p99, measured
from when each call was due). CPU per call is the process's user+system time (``/proc/<pid>/stat``) over the
phase, divided by its calls; ledger commits per settlement are the hub's ``yikatong_ledger_commits_total`` over
``yikatong_settlements_total{outcome="settled"}`` across its settlement phases. Figures are medians over rounds.

``var/bench.json`` holds, among others (``phases`` has every phase's figures of every round):

=====================================  =====================================================================
``verify.passthrough_per_second``      QueryCard through the proxy, calls/s
``verify.hub_per_second``              VerifyCard of JJJ cards through the hub, calls/s
``verify.ratio_to_passthrough``        hub / proxy calls/s (median of per-round ratios)
``verify.hub_cpu_ms_per_call``         CPU ms of the hub process per VerifyCard
``verify.passthrough_cpu_ms_per_call`` CPU ms of the proxy process per QueryCard
``verify.p50_added_ms``                hub p50 − proxy p50 at the fixed rate
``settle.direct_per_second``           the adapter's settle at its sandbox, calls/s
``settle.hub_per_second``              Settle through the hub, calls/s
``settle.ratio_to_direct``             hub / direct calls/s
``settle.commits_per_settlement``      ledger commits per settled settlement
``settle.p50_added_ms``                hub p50 − direct p50 at the fixed rate
=====================================  =====================================================================

Then the replicas row (``tools/benchkit/replicas.py``): VerifyCard and Settle through 1, 2 and 3 hub replicas on one
port sharing a PostgreSQL ledger (a fresh schema on ``--ledger-server`` per count), each measured beside this hub on
its SQLite ledger, over several connections, into ``replicas.sqlite_1`` and ``replicas.postgres_<n>`` (e.g.
``replicas.postgres_3.settle_per_second``, ``replicas.postgres_3.settle_ratio_to_sqlite``). ``--no-replicas`` skips
it, and so does a run where no PostgreSQL answers, saying so.

``--soak SECONDS`` instead drives mixed load (VerifyCard, AuthorizeService, Settle) through the hub at
``--soak-rate`` and reports, window by window, p50/p99, errors and the hub's RSS (``VmRSS``), into
``var/soak.json``.

Every process's standard error is kept in ``<data-dir>/<name>.log``. The exit status is 1 when a call failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tools.benchkit.processes import REPO, Fleet
from tools.benchkit.replicas import RowSettings, replicas_row
from tools.benchkit.report import bench_table, soak_table, write_json
from tools.benchkit.soak import soak
from tools.benchkit.suite import Settings, measure, report
from tools.benchkit.workload import JJJ, VENUES, Workload

MARKER = ".bench-data-dir"


def _parser() -> argparse.ArgumentParser:
    d = Settings()
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=d.calls, help=f"calls per throughput phase (default {d.calls})")
    parser.add_argument("--concurrency", type=int, default=d.concurrency, help="callers per throughput phase")
    parser.add_argument("--rounds", type=int, default=d.rounds, help=f"rounds of every phase (default {d.rounds})")
    parser.add_argument("--verify-rate", type=float, default=d.verify_rate, help="calls/s of fixed-rate VerifyCard")
    parser.add_argument("--settle-rate", type=float, default=d.settle_rate, help="calls/s of fixed-rate Settle")
    parser.add_argument("--rate-seconds", type=float, default=d.rate_seconds, help="length of a fixed-rate phase")
    r, row = RowSettings(), parser.add_argument_group("the replicas row (tools/benchkit/replicas.py)")
    row.add_argument("--no-replicas", action="store_true", help="skip the replicas row")
    row.add_argument("--ledger-server", default=r.server, help=f"its PostgreSQL, a schema per count ({r.server})")
    row.add_argument("--replicas", type=_counts, default=r.counts, metavar="N,N,…", help="replica counts (1,2,3)")
    row.add_argument("--replica-rounds", type=int, default=r.rounds, help=f"rounds per count ({r.rounds})")
    row.add_argument("--connections", type=int, default=r.connections, help="connections per phase (0: one a caller)")
    row.add_argument("--replica-seconds", type=float, default=r.seconds, help=f"no call starts later ({r.seconds:g} s)")
    parser.add_argument("--soak", type=float, metavar="SECONDS", help="run the soak for this long instead")
    parser.add_argument("--soak-rate", type=float, default=200.0, help="calls/s of the soak (default 200)")
    parser.add_argument("--data-dir", type=Path, default=REPO / "var" / "bench", help="hub data, PKI and logs")
    parser.add_argument("--out", type=Path, help="JSON output (default var/bench.json, or var/soak.json)")
    return parser


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(n) for n in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: replica counts are numbers from 1, e.g. 1,2,3")
    return counts


def fresh(data_dir: Path) -> None:
    """Empty ``data_dir`` for a run; only a folder an earlier run made (it holds the marker) is ever removed."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            raise SystemExit(f"{data_dir} is not empty and was not made by tools/bench.py; choose another --data-dir")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).touch()


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _commit() -> str:
    try:
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    except OSError:
        return ""
    return found.stdout.strip()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    fleet = Fleet(args.data_dir)
    meta: dict[str, Any] = {
        "commit": _commit(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg()[0],
        "data_dir": str(args.data_dir),
    }
    try:
        await fleet.start(list(VENUES), proxy_region=JJJ)
        _say(f"hub {fleet.hub_address} (pid {fleet.hub.pid if fleet.hub else '?'}), proxy {fleet.proxy_address}")
        work = Workload(fleet)
        await work.open()
        try:
            if args.soak is not None:
                results: dict[str, Any] = {"soak": await soak(work, fleet, args.soak, args.soak_rate, _say)}
            else:
                settings = Settings(
                    args.calls, args.concurrency, args.rounds, args.verify_rate, args.settle_rate, args.rate_seconds
                )
                results = report(await measure(work, settings, _say), settings, list(VENUES))
                meta |= {"calls": settings.calls, "concurrency": settings.concurrency, "rounds": settings.rounds}
                if not args.no_replicas:
                    row = RowSettings(
                        args.ledger_server, args.replicas, args.replica_rounds, args.connections, args.replica_seconds
                    )
                    results["replicas"] = await replicas_row(work, settings, row, _say)
                    results["errors"] |= results["replicas"].pop("errors", {})
        finally:
            await work.close()
    finally:
        await fleet.stop()
    meta["load_average_after"] = os.getloadavg()[0]
    return {**results, "run": meta}


def main() -> int:
    args = _parser().parse_args()
    args.data_dir = args.data_dir.resolve()
    out = args.out or REPO / "var" / ("soak.json" if args.soak is not None else "bench.json")
    fresh(args.data_dir)
    results = _run_on_loop(args)
    write_json(results, out)
    print(soak_table(results) if "soak" in results else bench_table(results))
    print(f"written to {out}; logs in {args.data_dir}")
    failed = results["soak"]["errors"] if "soak" in results else results["errors"]
    return 1 if failed else 0


def _run_on_loop(args: argparse.Namespace) -> dict[str, Any]:
    """On uvloop, as the hub and the proxy run, where it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(args))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
