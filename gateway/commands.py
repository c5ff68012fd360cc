"""What the ``yikatong`` commands do; ``gateway.cli`` only parses arguments."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import replace
from pathlib import Path

import grpc

from gateway.config import DEFAULT_FILE, load_hub_config
from gateway.hub import Hub
from gateway.selfcheck import run_self_check, yuan
from regions import ecard
from regions.config import load_regions
from regions.policy import load_policies
from regions.sandbox import RunningSandbox, start_sandbox
from regions.seed import people_of
from yikatong.v1 import clearing_pb2, clearing_pb2_grpc, federation_pb2, federation_pb2_grpc


async def wait_for_signal(hub: Hub | None = None) -> None:
    """Return on SIGINT or SIGTERM; SIGHUP reloads the hub's agreements file."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if hub is not None:
        loop.add_signal_handler(signal.SIGHUP, hub.reload_agreements)
    await stop.wait()


async def up(hub_port: int, admin_port: int, data_dir: Path, self_check: bool) -> int:
    """Start the three sandboxes (free ports) and the hub; write endpoints.json; self-check; serve."""
    config = load_hub_config(DEFAULT_FILE, data_dir=data_dir)
    sandboxes: list[RunningSandbox] = []
    try:
        for region in config.regions:
            sandboxes.append(await start_sandbox(region, port=0, admin_port=0))
        endpoints = {s.config.region_id: s.address for s in sandboxes}
        hub = Hub(replace(config.with_endpoints(endpoints), port=hub_port, admin_port=admin_port))
        await hub.start()
        for s in sandboxes:
            s.events.point_at(hub.address)
        try:
            _write_endpoints(data_dir, hub, sandboxes)
            print(f"hub       gRPC {hub.address}   admin {hub.admin_url}  (/healthz /readyz /metrics)")
            for s in sandboxes:
                print(f"{s.config.region_id:<22} {s.address:<28} admin {s.admin_url}")
            print(f"endpoints written to {data_dir / 'endpoints.json'}")
            if self_check:
                await hub.federation.probe()
                print("self-check:")
                ok = await run_self_check(hub.address)
                print("self-check passed" if ok else "self-check FAILED")
            print("serving; Ctrl-C to stop", flush=True)
            await wait_for_signal(hub)
        finally:
            await hub.stop()
    finally:
        for s in sandboxes:
            await s.stop()
    return 0


def _write_endpoints(data_dir: Path, hub: Hub, sandboxes: list[RunningSandbox]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    endpoints = {
        "hub": hub.address,
        "admin": hub.admin_url,
        "regions": {s.config.region_id: {"address": s.address, "admin": s.admin_url} for s in sandboxes},
    }
    (data_dir / "endpoints.json").write_text(json.dumps(endpoints, indent=2) + "\n")


async def serve(
    config_file: Path | None,
    data_dir: Path,
    port: int | None,
    admin_port: int | None,
    endpoints: dict[str, str] | None = None,
) -> int:
    """The hub alone, against the regions' configured (or given) endpoints, until SIGINT/SIGTERM."""
    config = load_hub_config(config_file or DEFAULT_FILE, data_dir=data_dir).with_endpoints(endpoints or {})
    config = replace(config, port=config.port if port is None else port)
    config = replace(config, admin_port=config.admin_port if admin_port is None else admin_port)
    hub = Hub(config)
    await hub.start()
    print(f"hub gRPC {hub.address} admin {hub.admin_url}", flush=True)
    try:
        await wait_for_signal(hub)
    finally:
        await hub.stop()
    return 0


async def serve_sandbox(region_id: str, port: int | None, admin_port: int | None, hub: str | None = None) -> int:
    regions = {r.region_id: r for r in load_regions()}
    if region_id not in regions:
        print(f"unknown region {region_id!r}; configured: {', '.join(regions)}")
        return 2
    sandbox = await start_sandbox(regions[region_id], port=port, admin_port=admin_port)
    if hub:
        sandbox.events.point_at(hub)
    print(f"{region_id} sandbox {sandbox.address} admin {sandbox.admin_url}", flush=True)
    try:
        await wait_for_signal()
    finally:
        await sandbox.stop()
    return 0


async def list_regions(hub_address: str) -> int:
    async with grpc.aio.insecure_channel(hub_address) as channel:
        stub = federation_pb2_grpc.FederationServiceStub(channel)
        answer = await stub.ListRegions(federation_pb2.ListRegionsRequest(), timeout=5)
    for r in answer.regions:
        state = "healthy" if r.healthy else "unhealthy"
        print(f"{r.id:<22} {','.join(r.provinces):<12} {r.adapter:<22} {state}  {r.name}")
    return 0


def print_cards(region_id: str | None, status: str | None, limit: int | None) -> int:
    """One JSON object per sandbox person (DESIGN §9), optionally filtered."""
    printed = 0
    for region in load_regions():
        if region_id and region.region_id != region_id:
            continue
        for p in people_of(region):
            if (status and (p.status is None or p.status.name != status.upper())) or (
                limit is not None and printed >= limit
            ):
                continue
            row: dict[str, object] = {
                "social_security_number": p.social_security_number,
                "holder_name": p.name,
                "card_number": p.card_number if p.status else "",
                "card_identification_code": p.card_identification_code if p.status else "",
                "issuing_area": p.issuing_area,
                "status": p.status.name if p.status else "",
                "insured_area": p.insurance.insured_area if p.insurance else "",
                "insurance_type": p.insurance.insurance_type.name if p.insurance else "",
                "region": region.region_id,
            }
            if p.insurance:
                row |= {"account_balance_fen": p.account_balance_fen, "accumulators": p.accumulators}
            print(json.dumps(row, ensure_ascii=False))
            printed += 1
    return 0


def print_policies(province: str | None) -> int:
    """One JSON object per policy row (DESIGN §9), optionally of one province."""
    for (code, _, _), policy in sorted(
        load_policies().items(), key=lambda kv: (kv[0][0], kv[0][1].value, kv[0][2].value)
    ):
        if province is None or code == province:
            print(json.dumps(policy.as_json()))
    return 0


def print_ecard_token(social_security_number: str, ttl_seconds: int) -> int:
    """One QR token of the sandbox e-card platform for the person's card as seeded; 2 when there is none."""
    ssn = social_security_number.strip().upper()
    for region in load_regions():
        person = next((p for p in people_of(region) if p.social_security_number == ssn), None)
        if person is not None:
            try:
                print(ecard.issue_token(ecard.credential_of(person), ttl_seconds=ttl_seconds))
            except ValueError as exc:
                print(f"no e-card token: {exc}", file=sys.stderr)
                return 2
            return 0
    print(f"no e-card token: no sandbox person has social security number {ssn}", file=sys.stderr)
    return 2


async def clearing_report(hub_address: str, period: str) -> int:
    """The period's pair matrix and net positions, as tables."""
    async with grpc.aio.insecure_channel(hub_address) as channel:
        stub = clearing_pb2_grpc.ClearingServiceStub(channel)
        try:
            answer = await stub.GetClearingReport(clearing_pb2.GetClearingReportRequest(period=period), timeout=5)
        except grpc.aio.AioRpcError as exc:
            print(f"clearing report refused: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    print(format_report(answer.report))
    return 0


def format_report(report: clearing_pb2.ClearingReport) -> str:
    state = clearing_pb2.PeriodState.Name(report.state).removeprefix("PERIOD_STATE_")
    closed = f", closed {report.closed_at}" if report.closed_at else ""
    lines = [f"clearing period {report.period} ({state}{closed})", "", "insured → treatment   count      fund (yuan)"]
    lines += [
        f"{p.insured_province:>7} → {p.treatment_province:<9} {p.count:>7} {yuan(p.fund_pay_fen):>16}"
        for p in report.pairs
    ]
    lines += [f"{'total':<19} {report.count:>7} {yuan(report.fund_pay_fen):>16}", "", "province        net (yuan)"]
    lines += [f"{p.province:<8} {yuan(p.net_fen):>17}" for p in report.provinces]
    lines += ["", "region                      net (yuan)"]
    lines += [f"{r.region:<22} {yuan(r.net_fen):>17}" for r in report.regions]
    return "\n".join(lines)
