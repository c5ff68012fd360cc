"""The replicas row: VerifyCard and Settle through the hub run as 1, 2 and 3 replicas sharing one PostgreSQL ledger,
against the run's own hub — one process on its SQLite ledger, the reference — measured in the same rounds.

For each replica count the row makes a fresh schema on the ledger server (dropped afterwards), starts that many
``yikatong serve`` on one port with the reference hub's data folder (``Fleet.start_replicas``: the keys must be
shared) and runs, over rounds (odd rounds reversed, ``suite.run_rounds``), four phases side by side: VerifyCard of
Beijing–Tianjin–Hebei cards and Settle at the Shanghai hospital, at the reference and at the replicas, with the
run's callers and calls; no call of a phase starts after ``seconds``, so replicas that stall cut their phase short
rather than stretch the run. Every one of these phases, the reference's too, goes over ``connections`` TLS
connections (one per caller): the kernel spreads *connections* over the replicas, so one connection would reach
one replica, and the reference gets as many so that the comparison is like for like.

The hub CPU per call sums every replica's ``/proc`` time. ``postgres_cpu_ms_per_*`` sums the server's backends
that serve the replicas' connections (found by ``application_name``), when the server runs on this machine (else
null): what the shared ledger costs, which more replicas do not divide. A ratio to the reference is the median of
per-round ratios to the reference phase measured beside it; other figures are medians over every round.

``replicas.<row>.<figure>`` in ``var/bench.json``, row ``sqlite_1`` (the reference) or ``postgres_<n>``:

===============================  ==========================================================================
``verify_per_second``            VerifyCard calls/s (``settle_per_second``: Settle)
``verify_cpu_ms_per_call``       CPU ms of the hub processes, all replicas, per VerifyCard (``settle_…``)
``verify_hub_cpu_busy``          CPUs the hub processes kept busy during VerifyCard (``settle_…``)
``loadgen_cpu_busy``             CPUs the load generator kept busy during VerifyCard
``verify_machine_cpu_busy``      CPUs busy on the whole machine during VerifyCard, whoever used them (``settle_…``)
``commits_per_settlement``       ledger commits, summed over replicas, per settled settlement
``verify_errors``                VerifyCard calls that failed, over every round (``settle_errors``: Settle)
``verify_ratio_to_sqlite``       postgres rows: calls/s over the reference's (``settle_…``)
``busiest_replica_share``        postgres rows: the busiest replica's share of the calls (1/n is even)
``postgres_cpu_ms_per_verify``   postgres rows: CPU ms of the server's backends per VerifyCard (``…_settle``)
===============================  ==========================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from .suite import Figures, Measured, Meter, Phase, Progress, Rounds, Settings, errors_of, run_rounds
from .workload import JJJ, Workload

SERVER = "postgresql://postgres@127.0.0.1:5432/test"
COUNTS = (1, 2, 3)
REFERENCE = "sqlite_1"
SETTLED = 'yikatong_settlements_total{outcome="settled"}'
KINDS = ("verify", "settle")


@dataclass(frozen=True)
class RowSettings:
    """The replicas row's own knobs (calls and callers are the run's).

    Attributes:
        server: the PostgreSQL server (libpq URL) the replicas' ledgers are made on, a schema per count.
        counts: the replica counts measured.
        rounds: rounds of the row's phases per count.
        connections: TLS connections per phase; 0 is one per caller.
        seconds: no call of a phase starts later, so replicas that stall (a lock they wait on) cut their phase
            short instead of stretching the run.
    """

    server: str = SERVER
    counts: tuple[int, ...] = COUNTS
    rounds: int = 2
    connections: int = 0
    seconds: float = 6.0

    def connections_for(self, callers: int) -> int:
        return self.connections or callers


def server_problem(server: str) -> str:
    """Why the PostgreSQL at ``server`` does not answer, in a line; "" when it does."""
    try:
        with psycopg.connect(server, connect_timeout=3):
            return ""
    except psycopg.Error as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def schema_url(server: str, schema: str) -> str:
    """``server`` with ``schema`` first on the search path and as the connections' ``application_name``."""
    separator = "&" if "?" in server else "?"
    return f"{server}{separator}options=-csearch_path%3D{schema}&application_name={schema}"


def _execute(server: str, statement: sql.Composed) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(statement)


@contextlib.asynccontextmanager
async def fresh_schema(server: str) -> AsyncIterator[str]:
    """A new, empty schema on ``server``, dropped afterwards; its name."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    name = sql.Identifier(schema)
    await asyncio.to_thread(_execute, server, sql.SQL("CREATE SCHEMA {}").format(name))
    try:
        yield schema
    finally:
        await asyncio.to_thread(_execute, server, sql.SQL("DROP SCHEMA {} CASCADE").format(name))


def backends(server: str, application: str) -> list[int]:
    """The server's processes serving ``application``'s connections, when they run on this machine; else none."""
    with psycopg.connect(server) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application,)).fetchall()
    pids = [int(row[0]) for row in rows]
    return pids if all(map(_is_postgres, pids)) else []


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


async def replicas_row(work: Workload, settings: Settings, row: RowSettings, progress: Progress) -> dict[str, Any]:
    """Measure the row; its figures (``var/bench.json``'s ``replicas``, with ``errors`` as ``suite.errors_of``
    gives them), or why it was skipped (``skipped``)."""
    problem = await asyncio.to_thread(server_problem, row.server)
    if problem:
        skipped = f"no PostgreSQL answers at {shown(row.server)} ({problem}); --ledger-server names another"
        progress(f"replicas row skipped: {skipped}")
        return {"skipped": skipped}
    measured = await measure(work, settings, row, progress)
    return report(measured, row, row.connections_for(settings.concurrency))


async def measure(work: Workload, settings: Settings, row: RowSettings, progress: Progress) -> Measured:
    """Every count in turn: its replicas started on a fresh schema, its rounds beside the reference, stopped."""
    fleet = work.fleet
    assert fleet.hub is not None
    reference = Meter({"hub": [fleet.hub.pid], "loadgen": [os.getpid()]}, [fleet.hub_admin])
    measured = Measured({}, {})
    for n in row.counts:
        async with fresh_schema(row.server) as schema:
            replicas = await fleet.start_replicas(f"hub-postgres-{n}", n, schema_url(row.server, schema))
            try:
                found = await asyncio.to_thread(backends, row.server, schema)
                pids = {"hub": replicas.pids, "loadgen": [os.getpid()]} | ({"postgres": found} if found else {})
                at_replicas = Meter(pids, replicas.admins)
                beside = f"{REFERENCE}/{n}"  # the reference, measured beside postgres_<n>
                verify, settle = _phases(work, settings, row, beside, fleet.hub_address, reference)
                verify_n, settle_n = _phases(work, settings, row, f"postgres_{n}", replicas.address, at_replicas)
                plan = [verify, verify_n, settle, settle_n]  # each pair side by side
                await run_rounds(plan, row.rounds, settings.concurrency, measured, progress)
            finally:
                await replicas.stop()
                await work.forget(replicas.address)
    return measured


Metered = tuple[Phase, Meter]


def _phases(
    work: Workload, settings: Settings, row: RowSettings, name: str, address: str, meter: Meter
) -> tuple[Metered, Metered]:
    """VerifyCard and Settle at ``address``, the counters read around both (calls by replica, commits)."""
    c, s, connections = settings.concurrency, row.seconds, row.connections_for(settings.concurrency)
    verify = work.hub_verify(JJJ, address, connections)
    settle = work.hub_settle(address, connections)
    return (
        (Phase(f"{name}:verify", verify, settings.calls, c, ledger=True, seconds=s), meter),
        (Phase(f"{name}:settle", settle, max(1, settings.calls // 2), c, ledger=True, seconds=s), meter),
    )


def report(measured: Measured, row: RowSettings, connections: int) -> dict[str, Any]:
    """The row's figures (module docstring) from every phase's per-round figures."""
    pooled = Rounds(_pooled(measured.rounds))
    figures: dict[str, Any] = {
        "counts": list(row.counts),
        "rounds": row.rounds,
        "connections": connections,
        "ledger_server": shown(row.server),
        REFERENCE: _target(pooled, REFERENCE),
    }
    for n in row.counts:
        figures[f"postgres_{n}"] = _target(pooled, f"postgres_{n}") | _replicas_only(measured, pooled, n)
    return figures | {"errors": errors_of(measured), "phases": measured.rounds}


def _replicas_only(measured: Measured, pooled: Rounds, n: int) -> dict[str, float]:
    """What only a postgres row has: ratios to the reference measured beside it, the spread, the server's CPU."""
    name, beside = f"postgres_{n}", f"{REFERENCE}/{n}"
    paired = Rounds(measured.rounds)
    figures = {
        f"{kind}_ratio_to_sqlite": paired.ratio((f"{name}:{kind}", "per_second"), (f"{beside}:{kind}", "per_second"))
        for kind in KINDS
    }
    figures["busiest_replica_share"] = _busiest_share([f for k in KINDS for f in measured.rounds[f"{name}:{k}"]])
    return figures | {
        f"postgres_cpu_ms_per_{kind}": pooled.of(f"{name}:{kind}", "cpu_ms_per_call:postgres") for kind in KINDS
    }


def _pooled(rounds: dict[str, list[Figures]]) -> dict[str, list[Figures]]:
    """The reference's rounds beside every count under one name (``sqlite_1/2:verify`` → ``sqlite_1:verify``)."""
    pooled: dict[str, list[Figures]] = {}
    for phase, figures in rounds.items():
        target, kind = phase.split(":")
        pooled.setdefault(f"{target.split('/')[0]}:{kind}", []).extend(figures)
    return pooled


def _target(r: Rounds, name: str) -> dict[str, float]:
    verify, settle = f"{name}:verify", f"{name}:settle"
    settled = r.total((settle,), SETTLED)
    commits = r.total((settle,), "yikatong_ledger_commits_total")
    return {
        "verify_per_second": r.of(verify, "per_second"),
        "settle_per_second": r.of(settle, "per_second"),
        "verify_cpu_ms_per_call": r.of(verify, "cpu_ms_per_call:hub"),
        "settle_cpu_ms_per_call": r.of(settle, "cpu_ms_per_call:hub"),
        "verify_hub_cpu_busy": r.of(verify, "cpu_busy:hub"),
        "settle_hub_cpu_busy": r.of(settle, "cpu_busy:hub"),
        "loadgen_cpu_busy": r.of(verify, "cpu_busy:loadgen"),
        "verify_machine_cpu_busy": r.of(verify, "cpu_busy:machine"),
        "settle_machine_cpu_busy": r.of(settle, "cpu_busy:machine"),
        "commits_per_settlement": round(commits / settled, 3) if settled else math.nan,
        "verify_errors": r.total((verify,), "errors"),
        "settle_errors": r.total((settle,), "errors"),
    }


def _busiest_share(rounds: list[Figures]) -> float:
    """The busiest replica's share of every call the rounds made (1.0 for one replica)."""
    served: dict[str, float] = {}
    for figures in rounds:
        for key, value in figures.items():
            if key.startswith("served:"):
                served[key] = served.get(key, 0.0) + value
    total = sum(served.values())
    return round(max(served.values()) / total, 3) if total else 1.0


def shown(server: str) -> str:
    """``server`` without a password, for output."""
    parts = urlsplit(server)
    if parts.password is None:
        return server
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
