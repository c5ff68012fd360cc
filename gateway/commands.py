"""What the ``yikatong`` commands do; ``gateway.cli`` only parses arguments."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path

from adapters import conformance
from adapters.registry import ENTRY_POINT_GROUP, AdapterRegistry, RegistryError
from adapters.scaffold import ScaffoldError, scaffold
from gateway.api.selfcheck import run_self_check
from gateway.config import DEFAULT_FILE, load_hub_config
from gateway.hub import Hub
from regions import ecard
from regions.config import ConfigError, load_regions
from regions.policy import POLICY_FILE, load_policies
from regions.sandbox import RunningSandbox, start_sandbox
from regions.seed import people_of


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
    """Start every configured region's sandbox (free ports) and the hub; write endpoints.json; self-check; serve."""
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
                print(f"{s.config.region_id:<26} {s.address:<28} admin {s.admin_url}")
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
    """One JSON object per policy row (DESIGN §9) of every configured region's table, optionally of one province."""
    files = {Path(r.sandbox.policies_file) if r.sandbox.policies_file else POLICY_FILE for r in load_regions()}
    rows = {key: policy for path in sorted(files) for key, policy in load_policies(path).items()}
    for (code, _, _), policy in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1].value, kv[0][2].value)):
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


# --- the partner kit: yikatong adapter list | new | check -------------------------------------------------


def list_adapters() -> int:
    """Installed adapters (entry points ``yikatong.adapters``) and the configured regions that use each.

    An adapter that cannot be loaded or registered is listed with the reason, and the exit code is 1.
    """
    try:
        regions = load_regions()
    except ConfigError as exc:
        print(f"warning: region files not read: {exc}", file=sys.stderr)
        regions = []
    users: dict[str, list[str]] = {}
    for region in regions:
        users.setdefault(region.adapter, []).append(region.region_id)
    registry, problems = AdapterRegistry(), []
    rows = [("NAME", "CLASS", "DISTRIBUTION", "REGIONS")]
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)):
        try:
            registry.register(entry.name, entry.load())
        except Exception as exc:  # a broken plugin is reported, not fatal to the listing
            problems.append(f"adapter {entry.name} ({entry.value}) is not usable: {exc}")
        dist = f"{entry.dist.name} {entry.dist.version}" if entry.dist is not None else "-"
        rows.append((entry.name, entry.value, dist, ", ".join(users.pop(entry.name, [])) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3])
    for adapter, region_ids in sorted(users.items()):
        problems.append(f"region {', '.join(region_ids)} names adapter {adapter!r}, which is not installed")
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 1 if problems else 0


def new_adapter(name: str, directory: Path) -> int:
    """Write a new adapter package from the template; 2 when the name is bad or the folder exists."""
    try:
        made = scaffold(name, directory)
    except ScaffoldError as exc:
        print(f"adapter new: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {made.distribution} in {made.root}:")
    for path in made.files:
        print(f"  {path}")
    print(f"adapter {made.name} is {made.package}.adapter:{made.class_name}; next (see {made.root / 'README.md'}):")
    print(f"  pip install -e {made.root}")
    print("  yikatong adapter list")
    print(f"  cd {made.root} && pytest")
    return 0


async def check_adapter(region_id: str, rule_ids: Sequence[str] = ()) -> int:
    """The conformance suite against the region's configured adapter and a sandbox started for it.

    One line per rule, ``PASS`` or ``FAIL`` with what was expected and got; 0 when every rule passes, 1 when
    one fails, 2 when the region, its adapter or a rule id is unknown.
    """
    try:
        config = conformance.resolve_region(region_id)
        cls = conformance.adapter_class_of(config)
        selected = conformance.rules(*rule_ids)
    except (LookupError, RegistryError) as exc:
        print(f"adapter check: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    # The sandbox's HTTP servers log callers that hang up mid-request; the deadline rule does so on purpose.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    print(f"conformance of {cls.__module__}:{cls.__qualname__} against region {config.region_id}", flush=True)
    report = await conformance.run(
        region=config, adapter_class=cls, only=selected, on_result=lambda r: print(r.line(), flush=True)
    )
    failed = len(report.failures)
    print(f"{len(report.results)} rules: {len(report.results) - failed} passed, {failed} failed")
    return 0 if report.passed else 1
