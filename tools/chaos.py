"""``make chaos``: the hub and the three sandboxes under mixed load and random faults, then the books reconciled.

Each sandbox and the hub run in their own processes (``yikatong sandbox serve``, ``yikatong serve --insecure``) on
free loopback ports, with a fresh data folder (``var/chaos/`` by default) that keeps every process's log. For
``--seconds``, in rounds of a few seconds:

* several concurrent callers (``tools/chaos_load.py``) verify cards, use card services, pre-settle, settle,
  reverse and ask for resident services (stood in for while a region is down);
* each round sets every region's fault knobs at random — down, added latency, error rate, answers delayed past
  the hub's call timeout, unbalanced splits — and now and then the hub is killed with SIGKILL and started again
  on the same ports and data folder.

Sandbox restarts are left out: a sandbox keeps its books in memory only, so a restarted one would have lost the
very settlements the run checks.

Then every fault is cleared, the hub is given time to drain (no settlement it was asked about left pending, outbox
depth 0), the clearing reports are read, the hub is stopped, its ledger read (``tools/chaos_ledger.py``: SQLite,
or the replicas' PostgreSQL schema) and its audit chain verified (``yikatong audit verify``: a broken chain is a
difference), and the invariants of ``tools/chaos_checks.py`` are checked against the regions' own books
(``GET /admin/settlements``, ``GET /admin/accumulators``). The result is printed as a table; any difference exits
1 and lists the first few. Choices of people, operations and faults come from ``random.Random`` seeded with
``--seed``; the interleaving of concurrent calls is the machine's.

With ``--replicas N`` (N ≥ 2) the hub is N ``yikatong serve`` processes on one port sharing the data folder and a
PostgreSQL ledger (``--ledger``, the machine's test server by default) in a fresh schema ``chaos_<seed>_<time>``;
every caller has its own connection, so the kernel spreads the load over the replicas. A kill takes one replica,
chosen by the dice, down for the round's down time while the others serve on. The schema is dropped when the run
passes and kept, with its name printed, when it fails or is broken off, beside the logs, for a post-mortem.
``--ledger`` without ``--replicas`` runs the single hub on PostgreSQL the same way.

Usage: ``PYTHONPATH=. python tools/chaos.py [--seconds N] [--seed S] [--callers C] [--data-dir D]
[--replicas N [--ledger postgresql://…]]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import psycopg

from regions.config import load_regions
from regions.provisioning import provision
from tools.chaos_checks import (
    ClearingReport,
    Finding,
    LedgerRow,
    Money,
    PersonBooks,
    RegionRow,
    check_answers,
    check_audit,
    check_clearing,
    check_codes,
    check_ledger,
    check_people,
)
from tools.chaos_ledger import (
    DEFAULT_SERVER,
    LedgerSource,
    create_schema,
    drop_schema,
    in_schema,
    schema_name,
)
from tools.chaos_load import Callers, Cast, Journal, dump, error_info
from tools.chaos_procs import Hubs, Sandbox, StartFailed, audit_verify, choose_victim
from yikatong.v1 import clearing_pb2, clearing_pb2_grpc, settlement_pb2, settlement_pb2_grpc

BEIJING = dt.timezone(dt.timedelta(hours=8))
SHOWN_DIFFERENCES = 5
FAULTS: dict[str, tuple[int, Any]] = {  # name → (weight, knobs from the dice)
    "none": (5, lambda r: {}),
    "down": (1, lambda r: {"down": True}),
    "latency": (2, lambda r: {"latency_ms": r.choice((200, 800, 2500))}),
    "error rate": (2, lambda r: {"error_rate": r.choice((0.2, 0.5))}),
    "answer delay": (
        3,
        lambda r: {
            "answer_delay_ms": r.choice((1000, 3500)),  # the hub's call timeout is 3 s
            "answer_delay_scope": r.choice(("settlement", "all")),
            "answer_delay_calls": r.choice((0, 2)),
        },
    ),
    "unbalanced splits": (1, lambda r: {"unbalanced_splits": True}),
}


@dataclass(frozen=True)
class Options:
    """What ``parse`` read; ``server`` is the PostgreSQL server of the hub's ``schema`` ("" for SQLite)."""

    seconds: float
    seed: int
    callers: int
    kill_chance: float
    drain_seconds: float
    data_dir: Path
    replicas: int = 1
    server: str = ""
    schema: str = ""

    @property
    def ledger(self) -> str | None:
        """The URL every hub process is given, None for the data folder's SQLite file."""
        return in_schema(self.server, self.schema) if self.server else None


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load and faults run (default 60)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice (default 1)")
    parser.add_argument("--callers", type=int, default=6, help="concurrent callers (default 6)")
    parser.add_argument("--kill-chance", type=float, default=0.4, help="chance a round kills the hub (default 0.4)")
    parser.add_argument("--drain-seconds", type=float, default=240.0, help="longest wait for the hub to drain")
    parser.add_argument("--data-dir", type=Path, default=None, help="default var/chaos/seed-S-<time>")
    parser.add_argument("--replicas", type=int, default=1, help="hub processes on one port (default 1)")
    parser.add_argument(
        "--ledger",
        default=None,
        help=f"PostgreSQL server of the hub's ledger, a fresh schema per run (replicas need one: {DEFAULT_SERVER})",
    )
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error(f"--replicas {args.replicas}: at least 1")
    server = args.ledger or (DEFAULT_SERVER if args.replicas > 1 else "")
    if server and not server.startswith(("postgresql://", "postgres://")):
        parser.error(f"--ledger {server}: a postgresql:// URL (replicas share a PostgreSQL ledger)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data_dir = args.data_dir or Path("var/chaos") / f"seed-{args.seed}-{stamp}"
    schema = schema_name(args.seed, stamp) if server else ""
    chance, drain = args.kill_chance, args.drain_seconds
    return Options(args.seconds, args.seed, args.callers, chance, drain, data_dir, args.replicas, server, schema)


def pick_faults(rng: random.Random) -> dict[str, Any]:
    name = rng.choices(list(FAULTS), [w for w, _ in FAULTS.values()])[0]
    knobs: dict[str, Any] = FAULTS[name][1](rng)
    return knobs


def describe(knobs: dict[str, Any]) -> str:
    return " ".join(f"{knob}={value}" for knob, value in knobs.items()) or "-"


class Run:
    """One chaos run: its processes, its load, its rounds of faults and kills, and the checks at the end."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.regions = load_regions()
        self.sandboxes = {r.region_id: Sandbox(r.region_id, options.data_dir) for r in self.regions}
        self.hubs = Hubs(options.data_dir, options.replicas, options.ledger)
        self.ledger = LedgerSource(options.ledger, options.data_dir / "ledger.sqlite3")
        self.journal = Journal()
        self.cast = Cast.choose(self.regions, random.Random(f"{options.seed}:cast"))
        self.rounds = 0
        self.started_at = time.time()
        self.notes: list[str] = []

    async def start(self, http: aiohttp.ClientSession) -> None:
        for sandbox in self.sandboxes.values():
            await sandbox.start()
        self.hubs.point_at({r: s.address for r, s in self.sandboxes.items()})
        await self.hubs.start()
        for sandbox in self.sandboxes.values():
            await sandbox.publish_to(http, self.hubs.address)
        print(
            f"hub {self.hubs.address} admin "
            + ", ".join(r.admin_url for r in self.hubs.replicas)
            + "; sandboxes "
            + ", ".join(f"{r} {s.address}" for r, s in self.sandboxes.items()),
            flush=True,
        )

    async def stop_all(self) -> None:
        await self.hubs.stop()
        for sandbox in self.sandboxes.values():
            await sandbox.stop()

    # --- load, faults and kills ----------------------------------------------------------------------------

    async def chaos(self, http: aiohttp.ClientSession) -> None:
        stop = asyncio.Event()
        callers = Callers(self.hubs, self.cast, self.journal, self.options.seed)
        tasks = [asyncio.create_task(callers.run(i, stop)) for i in range(self.options.callers)]
        rng = random.Random(f"{self.options.seed}:faults")
        loop = asyncio.get_running_loop()
        end = loop.time() + self.options.seconds
        try:
            while (left := end - loop.time()) > 0.5:
                await self.round(http, rng, min(left, rng.uniform(4.0, 9.0)))
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    async def round(self, http: aiohttp.ClientSession, rng: random.Random, seconds: float) -> None:
        self.rounds += 1
        knobs = {region: pick_faults(rng) for region in self.sandboxes}
        for region, sandbox in self.sandboxes.items():
            await sandbox.set_faults(http, knobs[region])
        kill_at = rng.uniform(0.3, seconds * 0.7) if rng.random() < self.options.kill_chance else None
        down_for = rng.uniform(0.2, 2.0)
        victim = choose_victim(rng, len(self.hubs.replicas)) if kill_at is not None else 0
        faults = "; ".join(f"{r} {describe(k)}" for r, k in knobs.items())
        name = self.hubs.replicas[victim].name
        kill = f"; {name} SIGKILL at {kill_at:.1f} s, down {down_for:.1f} s" if kill_at is not None else ""
        print(f"round {self.rounds:>3} ({seconds:.1f} s): {faults}{kill}", flush=True)
        if kill_at is None:
            await asyncio.sleep(seconds)
            return
        await asyncio.sleep(kill_at)
        await self.hubs.kill(victim)
        await asyncio.sleep(down_for)
        await self.hubs.restart(victim)
        await asyncio.sleep(max(0.0, seconds - kill_at - down_for))

    # --- drain -----------------------------------------------------------------------------------------------

    async def drain(self, http: aiohttp.ClientSession) -> list[ClearingReport]:
        """Clear every fault, wait until nothing is pending — neither a settlement the run was told of nor a ledger
        row (with replicas, one a killed replica claimed waits for its lease to end) — and the outbox is empty; the
        clearing reports."""
        for sandbox in self.sandboxes.values():
            await sandbox.set_faults(http, {})
        await self.hubs.start()  # any replica still down
        ids = sorted({a.settlement_id for a in self.journal.settles.values() if a.settlement_id})
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with grpc.aio.insecure_channel(self.hubs.address) as channel:
            stub = settlement_pb2_grpc.MedicalSettlementServiceStub(channel)
            calm = 0  # polls in a row with nothing pending: two, a second apart, so a gauge not yet refreshed
            while True:  # after a restart cannot pass for an empty outbox
                unfinished = await _unfinished(stub, ids) + await asyncio.to_thread(self.ledger.unfinished)
                depth = await self.hubs.outbox_depth(http)
                calm = calm + 1 if not unfinished and depth == 0 else 0
                if calm == 2:
                    print(f"drained in {loop.time() - started:.0f} s", flush=True)
                    break
                if loop.time() - started > self.options.drain_seconds:
                    note = f"not drained after {self.options.drain_seconds:.0f} s: {len(unfinished)} settlements"
                    self.notes.append(f"{note} unfinished (e.g. {unfinished[:3]}), outbox depth {depth:g}")
                    print(self.notes[-1], flush=True)
                    break
                await asyncio.sleep(1.0)
            return await _reports(clearing_pb2_grpc.ClearingServiceStub(channel), self.periods())

    def periods(self) -> list[str]:
        """Every clearing period from the run's start to now (Beijing time)."""
        first = dt.datetime.fromtimestamp(self.started_at, BEIJING).date().replace(day=1)
        last = dt.datetime.now(BEIJING).date()
        found = []
        while first <= last:
            found.append(first.strftime("%Y-%m"))
            first = (first + dt.timedelta(days=32)).replace(day=1)
        return found

    # --- the books and the checks -------------------------------------------------------------------------

    async def region_books(self, http: aiohttp.ClientSession) -> tuple[list[RegionRow], dict[str, PersonBooks]]:
        rows = []
        for region, sandbox in self.sandboxes.items():
            for entry in await sandbox.settlements(http):
                parts = (
                    entry["deductible_fen"],
                    entry["fund_pay_fen"],
                    entry["account_pay_fen"],
                    entry["cash_pay_fen"],
                )
                rows.append(RegionRow(region, entry["request_id"], entry["state"], Money(*parts)))
        books = {}
        for person in self.cast.settle:
            found = await self.sandboxes[person.region].books(http, person.ssn)
            if found is not None:
                acc = {v: (a["deductible_used_fen"], a["fund_paid_fen"]) for v, a in found["accumulators"].items()}
                books[person.ssn] = PersonBooks(acc, found["account_balance_fen"])
        return rows, books

    def check(
        self,
        ledger: list[LedgerRow],
        rows: list[RegionRow],
        books: dict[str, PersonBooks],
        reports: list[ClearingReport],
    ) -> list[Finding]:
        journal = self.journal
        settles = list(journal.settles.values())
        seed = {p.ssn: p.seed_books() for p in self.cast.settle}
        return [
            *check_answers(settles, journal.reversals, rows),
            check_ledger(ledger, rows),
            check_people(seed, settles, ledger, books),
            check_clearing(ledger, settles, reports),
            check_codes(journal.calls),
        ]

    def kills(self) -> str:
        """How many kills, and with replicas how many each took."""
        replicas = self.hubs.replicas
        each = ", ".join(f"{r.name} {r.kills}" for r in replicas)
        return f"{self.hubs.kills} ({each})" if len(replicas) > 1 else str(self.hubs.kills)

    def report(self, findings: list[Finding], ledger: list[LedgerRow]) -> None:
        print()
        print(f"{'invariant':<66} {'checked':>8} {'differences':>12}  result")
        for f in findings:
            print(f"{f.title:<66} {f.checked:>8} {len(f.differences):>12}  {'PASS' if f.passed else 'FAIL'}")
        print()
        codes = Counter(a.code for _, _, a in self.journal.calls)
        cut = sum(1 for _, _, a in self.journal.calls if a.cut)
        print(
            "calls by outcome code: "
            + ", ".join(f"{c} {n}" for c, n in codes.most_common())
            + f" (cut by kills: {cut})"
        )
        reasons = Counter(f"{a.code}/{a.reason}" for _, _, a in self.journal.calls if a.reason)
        print("  errors by reason: " + ", ".join(f"{r} {n}" for r, n in reasons.most_common(12)))
        stand_ins = sum(1 for m, _, a in self.journal.calls if m == "AuthorizeService" and a.state == "STAND_IN")
        settled = sum(1 for a in self.journal.settles.values() if a.answered_settled())
        reversed_ = sum(1 for r in self.journal.reversals if r.answered_reversed())
        states = Counter(row.state for row in ledger)
        print(
            f"rounds {self.rounds}, hub kills {self.kills()}, stand-in grants {stand_ins}; sandbox restarts: none"
            " (a sandbox's books live in memory)"
        )
        print(
            f"settlements checked: {len(self.journal.settles)} settle request ids ({settled} answered SETTLED,"
            f" {reversed_} reversals answered REVERSED); ledger rows {len(ledger)} "
            + " ".join(f"{s} {n}" for s, n in sorted(states.items()))
        )
        for note in self.notes:
            print(f"note: {note}")
        for f in findings:
            if f.differences:
                print(f"\nFAIL {f.title}:")
                for line in f.differences[:SHOWN_DIFFERENCES]:
                    print(f"  {line}")
                if len(f.differences) > SHOWN_DIFFERENCES:
                    print(f"  ... and {len(f.differences) - SHOWN_DIFFERENCES} more")


async def _unfinished(stub: settlement_pb2_grpc.MedicalSettlementServiceAsyncStub, ids: list[str]) -> list[str]:
    """The settlements (of ``ids``) the hub still holds in a PENDING state."""
    unfinished = []
    for settlement_id in ids:
        try:
            answer = await stub.GetSettlement(
                settlement_pb2.GetSettlementRequest(settlement_id=settlement_id), timeout=5
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.NOT_FOUND:
                unfinished.append(f"{settlement_id} ({exc.code().name}/{error_info(exc)[0]})")
            continue
        if "PENDING" in settlement_pb2.SettlementState.Name(answer.settlement.state):
            unfinished.append(settlement_id)
    return unfinished


async def _reports(stub: clearing_pb2_grpc.ClearingServiceAsyncStub, periods: list[str]) -> list[ClearingReport]:
    reports = []
    for period in periods:
        found = (await stub.GetClearingReport(clearing_pb2.GetClearingReportRequest(period=period), timeout=10)).report
        reports.append(
            ClearingReport(
                period,
                {(p.insured_province, p.treatment_province): (p.count, p.fund_pay_fen) for p in found.pairs},
                {p.province: p.net_fen for p in found.provinces},
                {r.region: r.net_fen for r in found.regions},
            )
        )
    return reports


async def finish(chaos: Run, http: aiohttp.ClientSession) -> tuple[list[Finding], list[LedgerRow]]:
    """Drain, stop the hub, read its ledger and have its audit chain verified, read the regions' books; check."""
    options = chaos.options
    reports = await chaos.drain(http)
    for replica, code in zip(chaos.hubs.replicas, await chaos.hubs.stop(), strict=True):
        if code != 0:
            chaos.notes.append(f"{replica.name} exited {code} on SIGTERM")
    ledger = chaos.ledger.rows()
    audit = check_audit(*await audit_verify(options.data_dir, options.ledger))
    rows, books = await chaos.region_books(http)
    return [*chaos.check(ledger, rows, books, reports), audit], ledger


async def run(options: Options) -> int:
    options.data_dir.mkdir(parents=True, exist_ok=True)
    hubs = f"{options.replicas} hub replicas" if options.replicas > 1 else "one hub"
    store = f"PostgreSQL schema {options.schema} at {options.server}" if options.ledger else "SQLite in the data folder"
    provision(options.data_dir, load_regions())  # what `yikatong up` makes first: region-link TLS, secrets, keys
    print(
        f"chaos: seed {options.seed}, {options.seconds:g} s, {options.callers} callers, {hubs}, ledger {store}; data"
        f" and logs in {options.data_dir}; sandbox restarts left out (their books live in memory)",
        flush=True,
    )
    if options.ledger:
        try:
            create_schema(options.server, options.schema)
        except psycopg.Error as exc:
            print(f"chaos: no schema {options.schema} at {options.server}: {exc}", file=sys.stderr)
            return 2
    chaos = Run(options)
    async with aiohttp.ClientSession() as http:
        try:
            await chaos.start(http)
            await chaos.chaos(http)
            findings, ledger = await finish(chaos, http)
        except (StartFailed, aiohttp.ClientError, grpc.aio.AioRpcError, OSError, psycopg.Error, sqlite3.Error) as exc:
            kept = f"; ledger schema {options.schema} kept" if options.ledger else ""
            print(f"chaos run broken off: {exc}; logs in {options.data_dir}{kept}", file=sys.stderr)
            return 2
        finally:
            (options.data_dir / "journal.jsonl").write_text(dump(chaos.journal))
            await chaos.stop_all()
    chaos.report(findings, ledger)
    if all(f.passed for f in findings):
        if options.ledger:
            drop_schema(options.server, options.schema)
            print(f"\nledger schema {options.schema} dropped (the run passed)")
        print("\nchaos: PASS")
        return 0
    logs = ", ".join(str(log) for log in [*chaos.hubs.logs, *(s.log for s in chaos.sandboxes.values())])
    kept = f"; ledger schema {options.schema} at {options.server}" if options.ledger else ""
    print(f"\nchaos: FAIL; journal {options.data_dir / 'journal.jsonl'}; logs {logs}{kept}")
    return 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
