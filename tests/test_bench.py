"""``make bench`` and its soak, run tiny: they start every process, call through all of them and write every figure.

Nothing here is timed: the figures are only checked to be there, numbers, and (for the ledger's) plausible. The
replicas row needs the machine's PostgreSQL (``tests/postgres.py``): without one the bench skips the row, saying so,
and the test of it skips too, or fails in CI.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import postgres
from tools.benchkit.replicas import server_problem
from tools.benchkit.report import replicas_table

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "tools" / "bench.py"
KEYS = (
    "verify.passthrough_per_second",
    "verify.hub_per_second",
    "verify.ratio_to_passthrough",
    "verify.hub_cpu_ms_per_call",
    "verify.passthrough_cpu_ms_per_call",
    "verify.p50_added_ms",
    "settle.direct_per_second",
    "settle.hub_per_second",
    "settle.ratio_to_direct",
    "settle.commits_per_settlement",
    "settle.p50_added_ms",
)
ROW_FIGURES = (
    "verify_per_second",
    "settle_per_second",
    "verify_cpu_ms_per_call",
    "settle_cpu_ms_per_call",
    "verify_hub_cpu_busy",
    "settle_hub_cpu_busy",
    "loadgen_cpu_busy",
    "verify_machine_cpu_busy",
    "settle_machine_cpu_busy",
    "commits_per_settlement",
    "verify_errors",
    "settle_errors",
)
REPLICAS_ONLY = ("verify_ratio_to_sqlite", "settle_ratio_to_sqlite", "busiest_replica_share")
SERVER_CPU = ("postgres_cpu_ms_per_verify", "postgres_cpu_ms_per_settle")  # null when the server is out of sight
SOAK_KEYS = ("rss_start_kib", "rss_after_warm_up_kib", "rss_end_kib", "rss_growth_after_warm_up_pct", "p99_max_ms")


def bench(tmp_path: Path, *args: str, timeout: float = 50) -> tuple[str, dict[str, Any]]:
    """Run tools/bench.py with ``args``; what it printed and the JSON it wrote."""
    out = tmp_path / "out.json"
    command = [sys.executable, str(BENCH), "--data-dir", str(tmp_path / "data"), "--out", str(out), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A session of its own, so that a run that hangs is killed with the hub, sandboxes and proxy it started.
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, start_new_session=True
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert process.returncode == 0, stdout + stderr
    return stdout, json.loads(out.read_text())


def number(results: dict[str, Any], dotted: str) -> float:
    value: Any = results
    for key in dotted.split("."):
        value = value[key]
    assert isinstance(value, int | float) and not isinstance(value, bool), f"{dotted} = {value!r}"
    assert math.isfinite(value), f"{dotted} = {value!r}"
    return float(value)


@pytest.mark.timeout(150)
def test_a_tiny_bench_writes_every_figure_and_prints_them(tmp_path: Path) -> None:
    # One caller, its calls round robin over three connections: the replicas row spreads over the replicas yet no two
    # settlements are in flight at once (tools/benchkit/replicas.py measures the hub under concurrent load).
    printed, results = bench(
        tmp_path,
        *("--calls", "12", "--rounds", "1", "--concurrency", "1", "--rate-seconds", "0.1"),
        *("--replica-rounds", "1", "--connections", "3", "--ledger-server", postgres.SERVER),
        timeout=140,
    )
    figures = {key: number(results, key) for key in KEYS}
    assert figures["verify.hub_per_second"] > 0 < figures["verify.passthrough_per_second"]
    assert figures["settle.hub_per_second"] > 0 < figures["settle.direct_per_second"]
    assert 0 < figures["settle.commits_per_settlement"] <= 20  # the hub's ledger counter moved with settlements
    assert results["errors"] == {}
    assert all(key in printed for key in KEYS)  # the table names each figure
    assert (tmp_path / "data" / "hub.log").read_text().count("/yikatong.v1.MedicalSettlementService/Settle") > 0
    if "skipped" in results["replicas"]:
        assert "replicas row skipped: no PostgreSQL answers" in printed
    postgres.require()
    replicas_row_is_complete(results["replicas"], printed, tmp_path / "data")


def replicas_row_is_complete(row: dict[str, Any], printed: str, data: Path) -> None:
    """Every figure of every count, each printed as a line of the table, each replica served."""
    assert row["counts"] == [1, 2, 3] and row["connections"] == 3
    for name in ("sqlite_1", "postgres_1", "postgres_2", "postgres_3"):
        figures = {key: number(row[name], key) for key in ROW_FIGURES}
        assert figures["verify_per_second"] > 0 < figures["settle_per_second"]
        assert 0 < figures["commits_per_settlement"] <= 20
        assert f"replicas.{name} " in printed
    for n in (1, 2, 3):
        figures = {key: number(row[f"postgres_{n}"], key) for key in REPLICAS_ONLY}
        assert 1 / n <= figures["busiest_replica_share"] <= 1
        for key in SERVER_CPU:
            value = row[f"postgres_{n}"][key]
            assert value is None or number(row[f"postgres_{n}"], key) >= 0
        assert len(list(data.glob(f"hub-postgres-{n}-*.log"))) == n


def test_the_replicas_row_is_skipped_without_a_postgresql() -> None:
    assert server_problem("postgresql://postgres@127.0.0.1:1/test")  # nothing listens on port 1


def test_a_short_soak_reports_the_hubs_memory_and_p99_over_time(tmp_path: Path) -> None:
    printed, results = bench(tmp_path, "--soak", "2", "--soak-rate", "50")
    soak = results["soak"]
    for key in SOAK_KEYS:
        number(soak, key)
    assert soak["errors"] == 0 and soak["calls"] == 100
    assert len(soak["windows"]) == 2 and all(w["rss_kib"] > 0 for w in soak["windows"])
    assert "hub RSS" in printed


def test_the_replicas_note_of_a_run_too_short_to_see_cpu_says_so() -> None:
    # /proc counts CPU in clock ticks (10 ms): a tiny phase may show none, and the note must not divide by it.
    figures = dict.fromkeys((*ROW_FIGURES, *REPLICAS_ONLY, *SERVER_CPU), 0.0) | {"verify_per_second": 12.0}
    row = {"connections": 3, "counts": [1], "sqlite_1": figures, "postgres_1": figures}

    printed = "\n".join(replicas_table(row, cpus=2))

    assert "A hub CPU serves n/a VerifyCard/s (postgres_1) and n/a Settle/s" in printed
