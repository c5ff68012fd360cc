"""The ``yikatong`` command line."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import logging
import os
import sys
import urllib.request
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from gateway.logwriter import BatchWriter
from gateway.masking import MaskingFilter

log = logging.getLogger("yikatong")
LEDGER_HELP = "the ledger: sqlite:///PATH (default: [ledger] in the hub file) or postgresql://… (replicas)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yikatong", description="Yikatong federation hub")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="the hub and every configured region's sandbox on this machine, with a self-check")
    up.add_argument("--hub-port", type=int, default=7100)
    up.add_argument("--admin-port", type=int, default=7180)
    up.add_argument("--data-dir", type=Path, default=Path("var"))
    up.add_argument("--no-self-check", action="store_true")
    up.add_argument(
        "--insecure", action="store_true", help="plaintext on loopback, every caller the dev participant (demos only)"
    )
    up.add_argument("--config", type=Path, default=None, help="hub file (default config/hub.toml)")
    up.add_argument(
        "--replicas", type=int, default=1, help="hub processes sharing one port (needs --ledger postgresql://…)"
    )
    up.add_argument(
        "--ledger",
        default=None,
        help=LEDGER_HELP,
    )

    serve = sub.add_parser("serve", help="the hub alone, against the regions' configured endpoints")
    serve.add_argument("--config", type=Path, default=None, help="hub file (default config/hub.toml)")
    serve.add_argument("--data-dir", type=Path, default=Path("var"))
    serve.add_argument("--host", default=None, help="bind address (default: [server] host of the hub file)")
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--admin-port", type=int, default=None)
    serve.add_argument(
        "--insecure", action="store_true", help="plaintext, every caller the dev participant; loopback addresses only"
    )
    serve.add_argument(
        "--ledger",
        default=None,
        help=LEDGER_HELP,
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development: accept sandbox keys and secrets (the sandbox e-card key, published secrets)",
    )
    serve.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="REGION=ADDRESS",
        help="override a region's back-end endpoint (repeatable), e.g. sichuan-chongqing=http://127.0.0.1:7112",
    )

    regions = sub.add_parser("regions", help="the federated regions, as a running hub reports them")
    regions.add_argument("--hub", default=None, help="hub address (default: from <data-dir>/endpoints.json)")
    regions.add_argument("--data-dir", type=Path, default=Path("var"))
    regions.add_argument("--as", dest="participant", default=None, help="participant id (default: an operator)")

    sandbox = sub.add_parser("sandbox", help="the sandbox regions").add_subparsers(
        dest="sandbox_command", required=True
    )
    sb_serve = sandbox.add_parser("serve", help="one region's sandbox on its configured ports")
    sb_serve.add_argument("--region", required=True)
    sb_serve.add_argument("--port", type=int, default=None)
    sb_serve.add_argument("--admin-port", type=int, default=None)
    sb_serve.add_argument("--hub", default=None, help="hub gRPC address to publish card events to")
    sb_serve.add_argument(
        "--data-dir", type=Path, default=Path("var"), help="where its certificate and secrets are (made if missing)"
    )
    sb_serve.add_argument("--ca", type=Path, default=None, help="federation CA (PEM), to publish over mutual TLS")
    sb_serve.add_argument("--cert", type=Path, default=None, help="the region participant's certificate (PEM)")
    sb_serve.add_argument("--key", type=Path, default=None, help="the region participant's private key (PEM)")
    cards = sandbox.add_parser("cards", help="the sandbox people and cards, one JSON object per line")
    cards.add_argument("--region", default=None)
    cards.add_argument("--status", default=None, help="card status name, e.g. NORMAL")
    cards.add_argument("--limit", type=int, default=None)
    policy = sandbox.add_parser("policy", help="the insured places' policy tables, one JSON object per line")
    policy.add_argument("--province", default=None, help="two-digit province code, e.g. 51")
    ecard = sandbox.add_parser("ecard-token", help="an electronic card QR token for a sandbox person's card")
    ecard.add_argument("--social-security-number", required=True)
    ecard.add_argument("--ttl-seconds", type=int, default=60, help="lifetime, 1 to 60 (default 60)")
    ecard.add_argument(
        "--data-dir", type=Path, default=Path("var"), help="where `yikatong up` keeps the platform's key"
    )
    fault = sandbox.add_parser("fault", help="change a running sandbox's fault knobs")
    fault.add_argument("--data-dir", type=Path, default=Path("var"))
    fault.add_argument("--region", required=True)
    knob = fault.add_mutually_exclusive_group(required=True)
    knob.add_argument("--down", action="store_true")
    knob.add_argument("--latency-ms", type=int)
    knob.add_argument("--error-rate", type=float)
    knob.add_argument("--answer-delay-ms", type=int, help="answer late after acting on each call")
    knob.add_argument("--unbalanced-splits", action="store_true", help="answer settlements with a broken split")
    knob.add_argument("--clear", action="store_true")

    clearing = sub.add_parser("clearing", help="clearing between provinces").add_subparsers(
        dest="clearing_command", required=True
    )
    report = clearing.add_parser("report", help="a period's pair matrix and net positions, as a table")
    report.add_argument("--period", required=True, help="YYYY-MM")
    report.add_argument("--hub", default=None, help="hub address (default: from <data-dir>/endpoints.json)")
    report.add_argument("--data-dir", type=Path, default=Path("var"))
    report.add_argument("--as", dest="participant", default=None, help="participant id (default: clearing)")

    ledger_cmd = sub.add_parser("ledger", help="the ledger's schema and moving it").add_subparsers(
        dest="ledger_command", required=True
    )
    migrate = ledger_cmd.add_parser("migrate", help="bring a ledger's schema up to date")
    migrate.add_argument(
        "--ledger",
        required=True,
        help=LEDGER_HELP,
    )
    copy = ledger_cmd.add_parser("copy", help="copy an embedded ledger into an empty PostgreSQL one, verified")
    copy.add_argument("--from", dest="source", required=True, help="sqlite:///PATH")
    copy.add_argument("--to", dest="destination", required=True, help="postgresql://…")

    audit_cmd = sub.add_parser("audit", help="the audit chain of a hub's ledger").add_subparsers(
        dest="audit_command", required=True
    )
    for name, text in (
        ("verify", "recompute the chain and the signed checkpoints; name the first bad record"),
        ("tail", "the last records, one line each"),
        ("show", "the records of one settlement"),
    ):
        one = audit_cmd.add_parser(name, help=text)
        one.add_argument("--data-dir", type=Path, default=Path("var"), help="holds the hub's keys (and its ledger)")
        one.add_argument("--ledger", default=None, help=LEDGER_HELP)
        if name == "tail":
            one.add_argument("-n", "--count", type=int, default=20)
        if name == "show":
            one.add_argument("--settlement", required=True, help="settlement id, e.g. stl-…")

    pki_cmd = sub.add_parser("pki", help="a development PKI: CA, hub and participant certificates").add_subparsers(
        dest="pki_command", required=True
    )
    pki_init = pki_cmd.add_parser("init", help="the CA, the hub's certificate and one per participant")
    pki_init.add_argument("--dir", type=Path, default=Path("var/pki"))
    pki_init.add_argument("--participants", type=Path, default=None, help="default: config/participants.toml")
    pki_issue = pki_cmd.add_parser("issue", help="a certificate for one participant of the participants file")
    pki_issue.add_argument("--participant", required=True)
    pki_issue.add_argument("--dir", type=Path, default=Path("var/pki"))
    pki_issue.add_argument("--participants", type=Path, default=None, help="default: config/participants.toml")

    adapter = sub.add_parser("adapter", help="the partner kit: adapters, scaffold, conformance suite").add_subparsers(
        dest="adapter_command", required=True
    )
    adapter.add_parser("list", help="installed adapters and the configured regions that use each")
    new = adapter.add_parser("new", help="write a new adapter package from the template")
    new.add_argument("name", help="the adapter's name: lower-case letters, digits and dashes, e.g. greater-bay")
    new.add_argument("--dir", type=Path, default=Path("."), help="folder to write yikatong-adapter-NAME/ into")
    check = adapter.add_parser("check", help="the conformance suite against a region's adapter and its sandbox")
    check.add_argument("--region", required=True, help="a configured region id")
    check.add_argument("--rule", action="append", default=[], metavar="RULE-ID", help="only this rule (repeatable)")
    return parser


def _serve(main: Coroutine[Any, Any, int]) -> int:
    """Run a server on uvloop where it is installed (a dependency on Linux; it takes some 10 % off each call),
    else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _log_off_the_loop() -> None:
    """Log lines are masked, formatted and written in batches by a thread of their own (``gateway.logwriter``),
    so the event loop only gathers them; no personal number or name reaches the log, whoever logs it."""
    writer = BatchWriter(sys.stderr)
    writer.setFormatter(logging.Formatter("%(message)s"))
    writer.addFilter(MaskingFilter())
    atexit.register(writer.close)
    # Nothing of what a record would otherwise collect is written (only its message is): not collected either.
    logging.logThreads, logging.logProcesses, logging.logMultiprocessing = False, False, False
    logging._srcfile = None  # the logging manual's "Optimization": no caller frame looked up per record
    logging.basicConfig(level=logging.INFO, handlers=[writer])


def _endpoints(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "endpoints.json"
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{path} not found: is `yikatong up --data-dir {data_dir}` running?") from None
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _log_off_the_loop()
    # grpc reads these when it is first imported, just below. Its core logs every refused TLS handshake (a caller
    # without a certificate, a region link that is not trusted) as an INFO line of its own; the commands say what
    # failed in their own words.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    if args.command == "up":
        # `up --replicas` starts processes while the sandboxes' gRPC threads run: grpc's fork handlers have nothing
        # to do for a child that execs at once, and would only log that they were skipped.
        os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
    from gateway import commands
    from gateway.api import client
    from regions.config import ConfigError

    try:
        if args.command == "up":
            return _serve(
                commands.up(
                    args.hub_port,
                    args.admin_port,
                    args.data_dir,
                    not args.no_self_check,
                    args.insecure,
                    replicas=args.replicas,
                    ledger=args.ledger,
                    config_file=args.config,
                )
            )
        if args.command == "serve":
            endpoints = dict(e.split("=", 1) for e in args.endpoint if "=" in e)
            return _serve(
                commands.serve(
                    args.config,
                    args.data_dir,
                    args.port,
                    args.admin_port,
                    endpoints,
                    host=args.host,
                    insecure=args.insecure,
                    ledger=args.ledger,
                    dev=args.dev,
                )
            )
        if args.command == "regions":
            hub = client.HubEndpoint.load(args.data_dir, args.hub)
            return asyncio.run(client.list_regions(hub, args.participant))
        if args.command == "adapter":
            return _adapter(args)
        if args.command == "clearing":
            hub = client.HubEndpoint.load(args.data_dir, args.hub)
            return asyncio.run(client.clearing_report(hub, args.period, args.participant))
        if args.command == "audit":
            return _audit(args)
        if args.command == "ledger":
            if args.ledger_command == "migrate":
                return asyncio.run(commands.migrate_ledger(args.ledger))
            return commands.copy_ledger(args.source, args.destination)
        if args.command == "pki":
            if args.pki_command == "init":
                return commands.pki_init(args.dir, args.participants)
            return commands.pki_issue(args.dir, args.participant, args.participants)
        if args.sandbox_command == "serve":
            tls = (args.ca, args.cert, args.key) if args.ca and args.cert and args.key else None
            return _serve(commands.serve_sandbox(args.region, args.port, args.admin_port, args.hub, tls, args.data_dir))
        if args.sandbox_command == "cards":
            return commands.print_cards(args.region, args.status, args.limit)
        if args.sandbox_command == "policy":
            return commands.print_policies(args.province)
        if args.sandbox_command == "ecard-token":
            return commands.print_ecard_token(args.social_security_number, args.ttl_seconds, args.data_dir)
        return _fault(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except client.EndpointsError as exc:
        print(str(exc), file=sys.stderr)
        return 2


def _audit(args: argparse.Namespace) -> int:
    from gateway import evidence

    try:
        if args.audit_command == "verify":
            return evidence.verify_chain(args.data_dir, args.ledger)
        if args.audit_command == "tail":
            return evidence.tail(args.data_dir, args.count, args.ledger)
        return evidence.show_settlement(args.data_dir, args.settlement, args.ledger)
    except evidence.Unreadable as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2


def _adapter(args: argparse.Namespace) -> int:
    from gateway import commands

    if args.adapter_command == "list":
        return commands.list_adapters()
    if args.adapter_command == "new":
        return commands.new_adapter(args.name, args.dir)
    return asyncio.run(commands.check_adapter(args.region, args.rule))


def _fault(args: argparse.Namespace) -> int:
    regions = _endpoints(args.data_dir)["regions"]
    if args.region not in regions:
        print(f"unknown region {args.region!r}; running: {', '.join(regions)}", file=sys.stderr)
        return 2
    knobs: dict[str, Any] = {
        "clear": args.clear,
        "down": args.down,
        "unbalanced_splits": args.unbalanced_splits,
        "latency_ms": args.latency_ms,
        "error_rate": args.error_rate,
        "answer_delay_ms": args.answer_delay_ms,
    }
    change = {k: v for k, v in knobs.items() if v not in (None, False)}
    request = urllib.request.Request(
        regions[args.region]["admin"] + "/admin/faults",
        data=json.dumps(change).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            print(reply.read().decode())
    except OSError as exc:
        print(f"could not change the faults of {args.region}: {exc}", file=sys.stderr)
        return 1
    return 0
