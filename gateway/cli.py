"""The ``yikatong`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from regions.config import ConfigError

log = logging.getLogger("yikatong")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yikatong", description="Yikatong federation hub")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="hub and the three sandbox regions on this machine, with a self-check")
    up.add_argument("--hub-port", type=int, default=7100)
    up.add_argument("--admin-port", type=int, default=7180)
    up.add_argument("--data-dir", type=Path, default=Path("var"))
    up.add_argument("--no-self-check", action="store_true")

    serve = sub.add_parser("serve", help="the hub alone, against the regions' configured endpoints")
    serve.add_argument("--config", type=Path, default=None, help="hub file (default config/hub.toml)")
    serve.add_argument("--data-dir", type=Path, default=Path("var"))
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--admin-port", type=int, default=None)

    regions = sub.add_parser("regions", help="the federated regions, as a running hub reports them")
    regions.add_argument("--hub", default=None, help="hub address (default: from <data-dir>/endpoints.json)")
    regions.add_argument("--data-dir", type=Path, default=Path("var"))

    sandbox = sub.add_parser("sandbox", help="the sandbox regions").add_subparsers(
        dest="sandbox_command", required=True
    )
    sb_serve = sandbox.add_parser("serve", help="one region's sandbox on its configured ports")
    sb_serve.add_argument("--region", required=True)
    sb_serve.add_argument("--port", type=int, default=None)
    sb_serve.add_argument("--admin-port", type=int, default=None)
    cards = sandbox.add_parser("cards", help="the sandbox people and cards, one JSON object per line")
    cards.add_argument("--region", default=None)
    cards.add_argument("--status", default=None, help="card status name, e.g. NORMAL")
    cards.add_argument("--limit", type=int, default=None)
    fault = sandbox.add_parser("fault", help="change a running sandbox's fault knobs")
    fault.add_argument("--data-dir", type=Path, default=Path("var"))
    fault.add_argument("--region", required=True)
    knob = fault.add_mutually_exclusive_group(required=True)
    knob.add_argument("--down", action="store_true")
    knob.add_argument("--latency-ms", type=int)
    knob.add_argument("--error-rate", type=float)
    knob.add_argument("--clear", action="store_true")
    return parser


def _endpoints(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "endpoints.json"
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{path} not found: is `yikatong up --data-dir {data_dir}` running?") from None
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from gateway import commands

    try:
        if args.command == "up":
            return asyncio.run(commands.up(args.hub_port, args.admin_port, args.data_dir, not args.no_self_check))
        if args.command == "serve":
            return asyncio.run(commands.serve(args.config, args.data_dir, args.port, args.admin_port))
        if args.command == "regions":
            return asyncio.run(commands.list_regions(args.hub or _endpoints(args.data_dir)["hub"]))
        if args.sandbox_command == "serve":
            return asyncio.run(commands.serve_sandbox(args.region, args.port, args.admin_port))
        if args.sandbox_command == "cards":
            return commands.print_cards(args.region, args.status, args.limit)
        return _fault(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


def _fault(args: argparse.Namespace) -> int:
    regions = _endpoints(args.data_dir)["regions"]
    if args.region not in regions:
        print(f"unknown region {args.region!r}; running: {', '.join(regions)}", file=sys.stderr)
        return 2
    change: dict[str, Any] = (
        {"clear": True}
        if args.clear
        else {"down": True}
        if args.down
        else {"latency_ms": args.latency_ms}
        if args.latency_ms is not None
        else {"error_rate": args.error_rate}
    )
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
