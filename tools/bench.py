"""``make bench``: what the hub adds to a call, as ratios against a baseline measured in the same run.

Starts ``yikatong up`` (the hub and the sandboxes) as its own process, then measures, from this process:

* **baseline** — the region's adapter calling the sandbox directly (what a call costs without the hub);
* **via hub** — the same operation through the hub's gRPC API (validation, routing, guard, ledger, metrics).

for card verification (a read) and settlement (a ledger-backed write), sequentially (latency percentiles) and
with concurrent callers (throughput). The machine is small and shared, so absolute times wander; the ratios of
each pair, taken minutes apart at most, are what to compare between versions.

Usage: ``python tools/bench.py [--calls N] [--concurrency C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from adapters.domain import Bill, BillLine, CardStatus, CatalogueClass, VisitType
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.registry import AdapterRegistry
from regions.config import load_regions
from regions.ecard import credential_of
from regions.seed import SeededPerson, people_of
from yikatong.v1 import card_pb2, card_pb2_grpc, common_pb2, settlement_pb2, settlement_pb2_grpc

REGION = "sichuan-chongqing"
YIKATONG = str(Path(sys.executable).parent / "yikatong")


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100)
    return {"p50": cuts[49] * 1000, "p95": cuts[94] * 1000, "p99": cuts[98] * 1000}


async def timed(call: Callable[[int], Awaitable[object]], calls: int) -> list[float]:
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - started)
    return samples


async def throughput(call: Callable[[int], Awaitable[object]], calls: int, concurrency: int) -> float:
    counter = iter(range(calls))

    async def worker() -> None:
        for i in counter:
            await call(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return calls / (time.perf_counter() - started)


LINES = (
    BillLine("110900001", "床位费", CatalogueClass.A, 2, 9000, 18000),
    BillLine("XC01AAT0", "头孢曲松", CatalogueClass.B, 3, 2000, 6000),
)


def bill(person: SeededPerson, request_id: str) -> Bill:
    """The bill the adapter settles directly (the baseline)."""
    insured_area = person.insurance.insured_area if person.insurance else ""
    return Bill(
        request_id,
        credential_of(person),
        insured_area,
        "310104",
        "H310104",
        3,
        VisitType.INPATIENT,
        False,
        LINES,
        False,
    )


def card(person: SeededPerson) -> common_pb2.CardCredential:
    return common_pb2.CardCredential(
        social_security_number=person.social_security_number,
        card_number=person.card_number,
        card_identification_code=person.card_identification_code,
        holder_name=person.name,
    )


def settle_request(person: SeededPerson, request_id: str) -> settlement_pb2.SettleRequest:
    """The same bill through the hub."""
    lines = [
        settlement_pb2.BillLine(
            item_code=line.item_code,
            item_name=line.item_name,
            catalogue_class=settlement_pb2.CatalogueClass.Value(f"CATALOGUE_CLASS_{line.catalogue_class.value}"),
            quantity=line.quantity,
            unit_price_fen=line.unit_price_fen,
            amount_fen=line.amount_fen,
        )
        for line in LINES
    ]
    return settlement_pb2.SettleRequest(
        request_id=request_id,
        card=card(person),
        venue=common_pb2.Venue(area_code="310104", institution_id="H310104"),
        hospital_level=3,
        visit_type=settlement_pb2.VISIT_TYPE_INPATIENT,
        lines=lines,
    )


async def run(calls: int, concurrency: int) -> dict[str, object]:
    config = next(r for r in load_regions() if r.region_id == REGION)
    people = [p for p in people_of(config) if p.status is CardStatus.NORMAL and p.insurance is not None]
    with tempfile.TemporaryDirectory() as data:
        process = await asyncio.create_subprocess_exec(
            YIKATONG, "up", "--hub-port", "0", "--admin-port", "0", "--data-dir", data, "--no-self-check",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert process.stdout is not None
        while b"serving" not in await asyncio.wait_for(process.stdout.readline(), 30):
            pass
        endpoints = json.loads((Path(data) / "endpoints.json").read_text())
        cls = AdapterRegistry.from_entry_points().get(config.adapter)
        adapter = cls(AdapterSettings(REGION, endpoints["regions"][REGION]["address"], dict(config.options)))
        await adapter.start()
        channel = grpc.aio.insecure_channel(endpoints["hub"])
        cards = card_pb2_grpc.CardServiceStub(channel)
        settle = settlement_pb2_grpc.MedicalSettlementServiceStub(channel)
        try:
            return await measure(adapter, cards, settle, people, calls, concurrency)
        finally:
            await channel.close(None)
            await adapter.close()
            process.send_signal(signal.SIGINT)
            await process.wait()


async def measure(
    adapter: RegionAdapter,
    cards: Any,  # card_pb2_grpc.CardServiceStub on an aio channel (the stubs are typed for sync channels)
    settle: Any,  # settlement_pb2_grpc.MedicalSettlementServiceStub, likewise
    people: list[SeededPerson],
    calls: int,
    concurrency: int,
) -> dict[str, object]:
    def person(i: int) -> SeededPerson:
        return people[i % len(people)]

    async def direct_verify(i: int) -> object:
        return await adapter.get_card(credential_of(person(i)), timeout=5)

    async def hub_verify(i: int) -> object:
        request = card_pb2.VerifyCardRequest(card=card(person(i)), venue=common_pb2.Venue(area_code="310104"))
        return await cards.VerifyCard(request, timeout=5)

    async def direct_settle(i: int) -> object:
        return await adapter.settle(bill(person(i), uuid.uuid4().hex), timeout=5)

    async def hub_settle(i: int) -> object:
        return await settle.Settle(settle_request(person(i), uuid.uuid4().hex), timeout=5)

    for warm in (direct_verify, hub_verify, direct_settle, hub_settle):
        await timed(warm, 20)
    result: dict[str, object] = {"calls": calls, "concurrency": concurrency}
    for name, direct, via_hub in (("verify", direct_verify, hub_verify), ("settle", direct_settle, hub_settle)):
        base, hub = percentiles(await timed(direct, calls)), percentiles(await timed(via_hub, calls))
        base_rate = await throughput(direct, calls, concurrency)
        hub_rate = await throughput(via_hub, calls, concurrency)
        result[name] = {
            "baseline_ms": {k: round(v, 2) for k, v in base.items()},
            "via_hub_ms": {k: round(v, 2) for k, v in hub.items()},
            "latency_ratio": {k: round(hub[k] / base[k], 2) for k in base},
            "baseline_per_second": round(base_rate),
            "via_hub_per_second": round(hub_rate),
            "throughput_ratio": round(hub_rate / base_rate, 2),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.calls, args.concurrency)), indent=2))


if __name__ == "__main__":
    main()
