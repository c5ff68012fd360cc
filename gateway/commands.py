"""What the ``yikatong`` commands do; ``gateway.cli`` only parses arguments."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from adapters import conformance
from adapters.registry import ENTRY_POINT_GROUP, AdapterRegistry, RegistryError
from adapters.scaffold import ScaffoldError, scaffold
from gateway import pki
from gateway.api.client import HubEndpoint
from gateway.api.selfcheck import run_self_check
from gateway.config import DEFAULT_FILE, HubConfig, TlsFiles, load_hub_config, with_ledger
from gateway.hub import Hub, check_secrets, check_transport
from gateway.ledger import Ledger, SqliteLedger
from gateway.ledger import copy as ledger_copy
from gateway.ledger.postgres import PostgresLedger
from gateway.participants import PARTICIPANTS_FILE, Participants, load_participants
from regions import ecard
from regions.config import ConfigError, load_regions
from regions.events import Credentials, mutual_tls
from regions.policy import POLICY_FILE, load_policies
from regions.provisioning import Links, provision
from regions.sandbox import RunningSandbox, start_sandbox
from regions.secrets import resolve_region
from regions.seed import people_of

log = logging.getLogger("yikatong")


async def wait_for_signal(hub: Hub | None = None) -> None:
    """Return on SIGINT or SIGTERM; SIGHUP reloads the hub's agreements file."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if hub is not None:
        loop.add_signal_handler(signal.SIGHUP, hub.reload)
    await stop.wait()


async def up(
    hub_port: int,
    admin_port: int,
    data_dir: Path,
    self_check: bool,
    insecure: bool = False,
    *,
    replicas: int = 1,
    ledger: str | None = None,
    config_file: Path | None = None,
) -> int:
    """Start every configured region's sandbox (free ports) and the hub; write endpoints.json; self-check; serve.

    On first start the data directory gets what the shipped configuration's references name
    (:func:`regions.provisioning.provision`): the development PKI in ``<data_dir>/pki`` (with each sandbox's
    server certificate and the hub's client certificate: every region link is TLS), the sandboxes' secrets and the
    e-card platform's key in ``<data_dir>/secrets``. The hub runs in development mode (sandbox keys accepted) and
    serves mutual TLS; ``insecure`` serves plaintext on loopback instead, every caller the dev participant. With
    ``replicas`` > 1 the hub runs as that many ``yikatong serve`` processes on one port, sharing the PostgreSQL
    ``ledger``.
    """
    config_file = config_file or DEFAULT_FILE
    generated = provision(data_dir, load_regions())
    config = replace(load_hub_config(config_file, data_dir=data_dir), insecure=insecure, dev=True)
    if ledger:
        config = with_ledger(config, ledger)
    if replicas > 1 and not config.ledger_url:
        print("up: --replicas needs --ledger postgresql://… (replicas share one ledger)", file=sys.stderr)
        return 2
    participants = load_participants(config.participants_file)
    dev_pki = None if insecure else pki.init(data_dir / "pki", [p.id for p in participants])
    if dev_pki is not None:
        config = replace(config, tls=TlsFiles(dev_pki.ca, dev_pki.hub.cert, dev_pki.hub.key))
    tls = _tls_endpoints(dev_pki, participants) if dev_pki is not None else None
    ecard.install(_ecard_platform(config))
    if generated:
        print(f"generated {len(generated)} development files (certificates, secrets, e-card key) in {data_dir}")
    sandboxes: list[RunningSandbox] = []
    try:
        for region in config.regions:
            sandboxes.append(await start_sandbox(region, port=0, admin_port=0))
        endpoints = {s.config.region_id: s.address for s in sandboxes}
        async with _hubs(config, config_file, endpoints, hub_port, admin_port, replicas) as hubs:
            for s in sandboxes:
                s.events.point_at(hubs.address, _region_credentials(dev_pki, s.config.region_id, participants))
            _write_endpoints(data_dir, hubs, sandboxes, tls)
            security = "mutual TLS" if dev_pki is not None else "PLAINTEXT (--insecure), every caller is dev"
            print(f"hub       gRPC {hubs.address} ({security})   admin {hubs.admin_url}  (/healthz /readyz /metrics)")
            for replica in hubs.replicas:
                print(f"  replica pid {replica.pid}   admin {replica.admin_url}")
            for s in sandboxes:
                print(f"{s.config.region_id:<26} {s.address:<28} admin {s.admin_url}")
            print(
                f"region links TLS (CA {Links(data_dir).ca}); e-card platform key {data_dir / ecard.PLATFORM_KEY_FILE}"
            )
            print(f"endpoints written to {data_dir / 'endpoints.json'}")
            if self_check:
                if hubs.hub is not None:
                    await hubs.hub.federation.probe()
                print("self-check:")
                ok = await run_self_check(HubEndpoint(hubs.address, tls))
                print("self-check passed" if ok else "self-check FAILED")
            print("serving; Ctrl-C to stop", flush=True)
            await wait_for_signal(hubs.hub)
    finally:
        for s in sandboxes:
            await s.stop()
    return 0


@dataclass(frozen=True)
class Replica:
    """One ``yikatong serve`` process of ``up --replicas``."""

    pid: int
    admin_url: str


@dataclass
class Hubs:
    """The hub ``up`` runs: in this process (``hub``), or as replica processes on one port."""

    address: str
    admin_url: str
    hub: Hub | None = None
    replicas: list[Replica] = field(default_factory=list)


@contextlib.asynccontextmanager
async def _hubs(
    config: HubConfig, config_file: Path, endpoints: dict[str, str], port: int, admin_port: int, replicas: int
) -> AsyncIterator[Hubs]:
    if replicas <= 1:
        hub = Hub(replace(config.with_endpoints(endpoints), port=port, admin_port=admin_port))
        await hub.start()
        try:
            yield Hubs(hub.address, hub.admin_url, hub=hub)
        finally:
            await hub.stop()
        return
    port = port or _free_port(config.host)
    command = [sys.executable, "-c", "from gateway.cli import main; raise SystemExit(main())", "serve"]
    command += ["--config", str(config_file), "--ledger", config.ledger_url, "--data-dir", str(config.data_dir)]
    command += ["--port", str(port)]
    command += [arg for region, address in endpoints.items() for arg in ("--endpoint", f"{region}={address}")]
    command += ["--insecure"] if config.insecure else []
    command += ["--dev"] if config.dev else []
    processes: list[asyncio.subprocess.Process] = []
    started: list[Replica] = []
    passing_on: list[asyncio.Task[None]] = []
    try:
        for n in range(replicas):
            admin = ["--admin-port", str(admin_port + n if admin_port else 0)]
            process = await asyncio.create_subprocess_exec(*command, *admin, stdout=asyncio.subprocess.PIPE)
            processes.append(process)
            started.append(Replica(process.pid, await _admin_url_of(process)))
            assert process.stdout is not None
            passing_on.append(asyncio.create_task(_pass_on(process.stdout)))
        yield Hubs(f"{config.host}:{port}", started[0].admin_url, replicas=started)
    finally:
        for task in passing_on:
            task.cancel()
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            await process.wait()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def _admin_url_of(process: asyncio.subprocess.Process, timeout: float = 60.0) -> str:
    """The admin URL a starting ``serve`` prints (``hub gRPC ADDRESS admin URL``); what it prints before is passed
    on."""
    assert process.stdout is not None
    async with asyncio.timeout(timeout):
        while line := (await process.stdout.readline()).decode():
            if line.startswith("hub gRPC "):
                return line.split(" admin ", 1)[1].strip()
            print(line, end="")
    raise RuntimeError(f"replica {process.pid} ended before it served (exit {await process.wait()})")


async def _pass_on(stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        print(line.decode(), end="", flush=True)


def _ecard_platform(config: HubConfig) -> ecard.Platform:
    """The sandbox e-card platform of the data directory, under the key id the hub trusts its key by."""
    key = ecard.load_platform_key(config.data_dir)
    if key is None:
        raise ConfigError(config.data_dir / ecard.PLATFORM_KEY_FILE, "(file)", "", "no sandbox e-card platform key")
    public = ecard.public_key_base64(key)
    trusted = [kid for kid, k in config.ecard_keys.items() if ecard.public_key_base64(k) == public]
    if not trusted:
        log.warning("%s trusts no key of the sandbox e-card platform: its tokens will be refused", config.source)
    return ecard.Platform(key, trusted[0] if trusted else ecard.SANDBOX_KEY_ID)


def _region_credentials(dev_pki: pki.Pki | None, region_id: str, participants: Participants) -> Credentials | None:
    """The credentials a region's sandbox publishes card events with: its participant's certificate."""
    if dev_pki is None:
        return None
    participant = participants.get(f"region-{region_id}")
    if participant is None:
        log.warning("no participant region-%s: the %s sandbox's card events will be refused", region_id, region_id)
        participant = next(iter(participants))
    files = dev_pki.participant(participant.id)
    return mutual_tls(dev_pki.ca, files.cert, files.key)


def _tls_endpoints(dev_pki: pki.Pki, participants: Participants) -> dict[str, Any]:
    """endpoints.json's ``"tls"``: the CA, and each participant's files and scope."""
    entries = {}
    for p in participants:
        files = dev_pki.participant(p.id)
        entries[p.id] = {
            "cert": str(files.cert.resolve()),
            "key": str(files.key.resolve()),
            "roles": sorted(p.roles),
            "areas": list(p.areas),
            "institutions": list(p.institutions),
        }
    return {"ca": str(dev_pki.ca.resolve()), "participants": entries}


def _write_endpoints(data_dir: Path, hubs: Hubs, sandboxes: list[RunningSandbox], tls: dict[str, Any] | None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    endpoints: dict[str, Any] = {
        "hub": hubs.address,
        "admin": hubs.admin_url,
        "regions": {s.config.region_id: {"address": s.address, "admin": s.admin_url} for s in sandboxes},
    }
    if hubs.replicas:
        endpoints["replicas"] = [{"pid": r.pid, "admin": r.admin_url} for r in hubs.replicas]
    if tls is not None:
        endpoints["tls"] = tls
    (data_dir / "endpoints.json").write_text(json.dumps(endpoints, indent=2) + "\n")


async def serve(
    config_file: Path | None,
    data_dir: Path,
    port: int | None,
    admin_port: int | None,
    endpoints: dict[str, str] | None = None,
    *,
    host: str | None = None,
    insecure: bool = False,
    ledger: str | None = None,
    dev: bool = False,
) -> int:
    """The hub alone, against the regions' configured (or given) endpoints, until SIGINT/SIGTERM; one replica
    when ``ledger`` is a PostgreSQL URL several share.

    Mutual TLS with the files ``[tls]`` names; ``insecure`` (plaintext, every caller dev) only on loopback.
    Sandbox keys and published secrets are refused unless ``dev`` (:func:`gateway.hub.check_secrets`).
    """
    config = load_hub_config(config_file or DEFAULT_FILE, data_dir=data_dir).with_endpoints(endpoints or {})
    config = replace(config, port=config.port if port is None else port, host=host or config.host, insecure=insecure)
    if ledger:
        config = with_ledger(config, ledger)
    config = replace(config, admin_port=config.admin_port if admin_port is None else admin_port, dev=dev)
    check_transport(config)
    check_secrets(config)
    hub = Hub(config)
    await hub.start()
    print(f"hub gRPC {hub.address} admin {hub.admin_url}", flush=True)
    try:
        await wait_for_signal(hub)
    finally:
        await hub.stop()
    return 0


async def serve_sandbox(
    region_id: str,
    port: int | None,
    admin_port: int | None,
    hub: str | None = None,
    tls: tuple[Path, Path, Path] | None = None,
    data_dir: Path = Path("var"),
) -> int:
    """One region's sandbox, its references resolved from ``data_dir`` (what is missing there is generated, as
    ``yikatong up`` does); with ``hub``, it publishes card events there — over mutual TLS with the region
    participant's ``tls`` files (CA, certificate, key), or in plaintext to a hub started with ``--insecure``."""
    regions = {r.region_id: r for r in load_regions()}
    if region_id not in regions:
        print(f"unknown region {region_id!r}; configured: {', '.join(regions)}")
        return 2
    provision(data_dir, [regions[region_id]])
    region = resolve_region(regions[region_id], data_dir)
    sandbox = await start_sandbox(region, port=port, admin_port=admin_port)
    if hub:
        sandbox.events.point_at(hub, mutual_tls(*tls) if tls is not None else None)
    print(f"{region_id} sandbox {sandbox.address} admin {sandbox.admin_url}", flush=True)
    try:
        await wait_for_signal()
    finally:
        await sandbox.stop()
    return 0


async def migrate_ledger(url: str) -> int:
    """Bring the ledger at ``url`` (``sqlite:///PATH`` or ``postgresql://…``; a password from the URL or libpq's
    ``PGPASSWORD``/``~/.pgpass``) to the current schema version."""
    if url.startswith("sqlite:///"):
        store: Ledger = SqliteLedger(Path(url.removeprefix("sqlite:///")))
    elif url.startswith(("postgresql://", "postgres://")):
        store = PostgresLedger(url)
    else:
        print("ledger migrate: --ledger sqlite:///PATH or postgresql://…", file=sys.stderr)
        return 2
    await store.open()
    try:
        print(f"ledger at schema version {await store.schema_version()}")
    finally:
        await store.close()
    return 0


def copy_ledger(source: str, destination: str) -> int:
    """Copy an embedded ledger into an empty PostgreSQL one, and verify it (``gateway.ledger.copy``); a password
    from the URL or libpq's ``PGPASSWORD``/``~/.pgpass``."""
    if not source.startswith("sqlite:///") or not destination.startswith(("postgresql://", "postgres://")):
        print("ledger copy: --from sqlite:///PATH --to postgresql://…", file=sys.stderr)
        return 2
    try:
        copied = ledger_copy.copy(Path(source.removeprefix("sqlite:///")), destination)
    except ledger_copy.CopyError as exc:
        print(f"ledger copy failed: {exc}", file=sys.stderr)
        return 1
    rows = ", ".join(f"{table} {count}" for table, count in copied.counts.items())
    print(f"copied and verified: {rows}; audit head {copied.head[0]} {copied.head[1]}")
    return 0


def pki_init(folder: Path, participants_file: Path | None) -> int:
    """A development PKI: the CA, the hub's certificate, one per participant (existing files are kept)."""
    participants = load_participants(participants_file or PARTICIPANTS_FILE)
    made = pki.init(folder, [p.id for p in participants])
    print(f"CA {made.ca}; hub {made.hub.cert} (localhost, 127.0.0.1); {len(participants)} participants in {folder}")
    return 0


def pki_issue(folder: Path, participant_id: str, participants_file: Path | None) -> int:
    """A (new) certificate for one participant of the participants file, signed by the PKI's CA."""
    participants = load_participants(participants_file or PARTICIPANTS_FILE)
    made = pki.Pki(folder)
    if participants.get(participant_id) is None:
        print(f"pki issue: {participant_id!r} is not in {participants.path}; add it there first", file=sys.stderr)
        return 2
    if not made.exists:
        print(f"pki issue: no CA in {folder}; run `yikatong pki init --dir {folder}` first", file=sys.stderr)
        return 2
    files = pki.issue(made, participant_id)
    print(f"{participant_id}: certificate {files.cert}, key {files.key}")
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


def print_ecard_token(social_security_number: str, ttl_seconds: int, data_dir: Path = Path("var")) -> int:
    """One QR token of the sandbox e-card platform for the person's card as seeded; 2 when there is none.

    It is signed with the platform key ``yikatong up`` generated into ``data_dir``, under the key id the hub file
    trusts it by.
    """
    ssn = social_security_number.strip().upper()
    try:
        platform = _ecard_platform(load_hub_config(DEFAULT_FILE, data_dir=data_dir))
    except ConfigError as exc:
        print(f"no e-card token: {exc} (`yikatong up --data-dir {data_dir}` generates one)", file=sys.stderr)
        return 2
    for region in load_regions():
        person = next((p for p in people_of(region) if p.social_security_number == ssn), None)
        if person is not None:
            try:
                credential = ecard.credential_of(person)
                print(ecard.issue_token(credential, ttl_seconds=ttl_seconds, key=platform.key, kid=platform.kid))
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
