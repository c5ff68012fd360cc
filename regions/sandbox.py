"""Run a region's sandbox: its protocol server plus an admin HTTP server for fault knobs and the clock.

Admin endpoints (JSON): ``GET /healthz``; ``GET``/``POST /admin/faults`` (``down``, ``latency_ms``,
``error_rate``, ``answer_delay_ms``, ``unbalanced_splits``, ``drop_events``, ``clear``, ...); ``POST /admin/clock``
(``advance_seconds``); ``POST /admin/cards/{card}/status`` (``status``: a card status name; changes the card at
the region's own counter, which publishes an event like any change); ``POST /admin/events`` (``hub``: the hub's
gRPC address the region publishes its card events to); ``GET /admin/settlements`` and
``GET /admin/accumulators?social_security_number=S`` (the region's own books, :mod:`regions.books`).
"""

from __future__ import annotations

import importlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from itertools import product
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from adapters.domain import CardStatus, InsuranceType, VisitType
from adapters.tls import load_cert_chain
from regions import books
from regions.backend import Backend
from regions.cardsystem import CardSystem, SandboxClock
from regions.config import ConfigError, RegionConfig
from regions.events import EventPublisher
from regions.faults import Faults
from regions.medical import MedicalSystem
from regions.policy import POLICY_FILE, load_policies
from regions.secrets import unresolved
from regions.seed import people_of
from regions.wiretap import Wiretap

# Region id → module that defines ``async def serve(backend, config, host, port) -> ProtocolServer``. A partner's
# region registers its ``serve`` under the entry-point group ``yikatong.sandboxes``, named like its adapter.
SANDBOX_ENTRY_POINTS = "yikatong.sandboxes"
SERVERS = {
    "yangtze-delta": "regions.yangtze_delta",
    "sichuan-chongqing": "regions.sichuan_chongqing",
    "beijing-tianjin-hebei": "regions.jingjinji",
}


class ProtocolServer(Protocol):
    """A running protocol server of a sandbox."""

    address: str  # what an adapter's endpoint setting should be

    async def stop(self) -> None: ...


ServeFn = Callable[[Backend, RegionConfig, str, int], Awaitable[ProtocolServer]]


@dataclass
class HttpServer:
    """An aiohttp application listening: what an HTTP sandbox's ``serve`` returns (a :class:`ProtocolServer`).

    Attributes:
        address: the base URL, ``https://host:port`` (``http://`` without TLS), an adapter's ``endpoint``
            setting should hold.
        wiretap: every request that reached the application, as received (:mod:`regions.wiretap`).
    """

    address: str
    _runner: web.AppRunner
    wiretap: Wiretap = field(default_factory=Wiretap)

    async def stop(self) -> None:
        """Stop listening and finish the requests in flight."""
        await self._runner.cleanup()


def server_tls(config: RegionConfig) -> ssl.SSLContext | None:
    """The sandbox's TLS from its ``[sandbox]`` keys (resolved): its certificate, and when ``tls_client_ca`` is
    set the client certificate it requires; None when the region file gives it no certificate (plaintext)."""
    settings = config.sandbox
    if not settings.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_cert_chain(context, settings.tls_cert, settings.tls_key)
    if settings.tls_client_ca:
        context.load_verify_locations(cadata=settings.tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def serve_http(app: web.Application, host: str, port: int, tls: ssl.SSLContext | None = None) -> HttpServer:
    """Put ``app`` on ``host:port`` (port 0 picks a free one), without an access log (paths carry card numbers).

    Args:
        app: the sandbox's application; a :class:`~regions.wiretap.Wiretap` is put in front of its middlewares.
        host: interface to listen on.
        port: port to listen on.
        tls: the server's TLS (:func:`server_tls` of the region's configuration); None serves plaintext.
    """
    wiretap = Wiretap()
    app.middlewares.insert(0, wiretap.middleware())
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=tls).start()
    scheme = "https" if tls is not None else "http"
    return HttpServer(f"{scheme}://{host}:{runner.addresses[0][1]}", runner, wiretap)


@dataclass
class RunningSandbox:
    """A sandbox that is serving: its state, knobs and where it listens."""

    config: RegionConfig
    backend: Backend
    server: ProtocolServer
    events: EventPublisher
    admin: HttpServer

    @property
    def system(self) -> CardSystem:
        return self.backend.cards

    @property
    def medical(self) -> MedicalSystem:
        return self.backend.medical

    @property
    def faults(self) -> Faults:
        return self.backend.faults

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def wiretap(self) -> Wiretap | None:
        """What reached the protocol server, when it records that (every HTTP sandbox, and 京津冀's)."""
        tap = getattr(self.server, "wiretap", None)
        return tap if isinstance(tap, Wiretap) else None

    @property
    def admin_url(self) -> str:
        return self.admin.address

    async def stop(self) -> None:
        await self.events.stop()
        await self.server.stop()
        await self.admin.stop()


def protocol_server(config: RegionConfig) -> ServeFn:
    """The ``serve`` function of the region's sandbox protocol: built in, or a partner's entry point."""
    if config.region_id in SERVERS:
        serve: ServeFn = importlib.import_module(SERVERS[config.region_id]).serve
        return serve
    for entry in entry_points(group=SANDBOX_ENTRY_POINTS, name=config.adapter):
        loaded: ServeFn = entry.load()
        return loaded
    raise ConfigError(config.source, "adapter", config.adapter, f"no sandbox registered under {SANDBOX_ENTRY_POINTS}")


def build_backend(config: RegionConfig) -> Backend:
    """The region's systems with its seeded people and its policy table (``sandbox.policies_file``)."""
    people = people_of(config)
    policy_file = Path(config.sandbox.policies_file) if config.sandbox.policies_file else POLICY_FILE
    policies = load_policies(policy_file)
    for province in config.provinces:
        missing = [k for k in product(InsuranceType, VisitType) if (province, *k) not in policies]
        if missing:
            raise ConfigError(
                policy_file, "policy", province, f"no policy row for {missing[0][0].value} {missing[0][1].value}"
            )
    faults = Faults()
    clock = SandboxClock()
    cards = CardSystem(
        config.region_id,
        people,
        clock,
        stage_seconds=config.sandbox.stage_seconds,
        temporary_loss_days=config.sandbox.temporary_loss_days,
    )
    return Backend(cards, MedicalSystem(config.region_id, people, policies, clock, faults), faults)


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def admin_app(backend: Backend, events: EventPublisher) -> web.Application:
    system, faults = backend.cards, backend.faults

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"region": system.region_id, "faults": faults.as_dict()})

    async def get_faults(_: web.Request) -> web.Response:
        return web.json_response(faults.as_dict())

    async def set_faults(request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            faults.update(body)
        except ValueError as exc:
            return _json_error(400, str(exc))
        return web.json_response(faults.as_dict())

    async def advance_clock(request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
            seconds = float(body["advance_seconds"])
        except (ValueError, KeyError, TypeError):
            return _json_error(400, "advance_seconds must be a number")
        system.clock.advance(seconds)
        return web.json_response({"offset_seconds": system.clock.offset})

    async def set_card_status(request: web.Request) -> web.Response:
        number = request.match_info["card"]
        try:
            body: Any = await request.json()
            status = CardStatus[str(body["status"])]
        except (ValueError, KeyError, TypeError):
            return _json_error(400, "status must be a card status name")
        if number not in system.cards:
            return _json_error(404, "no such card")
        card = system.set_status(number, status)
        return web.json_response({"card_number": card.card_number, "status": card.status.name})

    async def publish_to(request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
            hub = str(body["hub"])
        except (ValueError, KeyError, TypeError):
            return _json_error(400, "hub must be the hub's gRPC address, host:port")
        events.point_at(hub)
        return web.json_response({"hub": hub})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/admin/events", publish_to)
    app.router.add_get("/admin/faults", get_faults)
    app.router.add_post("/admin/faults", set_faults)
    app.router.add_post("/admin/clock", advance_clock)
    app.router.add_post("/admin/cards/{card}/status", set_card_status)
    app.router.add_routes(books.routes(backend.medical))
    return app


async def start_sandbox(
    config: RegionConfig, *, host: str = "127.0.0.1", port: int | None = None, admin_port: int | None = None
) -> RunningSandbox:
    """Start the region's sandbox; ports default to the region file's, 0 picks free ones.

    Args:
        config: the region's configuration with its references resolved
            (:func:`regions.secrets.resolve_region`): the sandbox's certificate and the secrets it checks.
        host: interface to listen on.
        port: protocol port (None: the region file's).
        admin_port: admin port (None: the region file's).

    Raises:
        ConfigError: a reference is left unresolved.
    """
    left = unresolved(config)
    if left is not None:
        raise ConfigError(config.source, *left, "a reference the sandbox cannot use: resolve the region first")
    backend = build_backend(config)
    events = EventPublisher(config.region_id, backend.faults)
    backend.cards.listeners.append(events.on_change)
    events.start()
    serve = protocol_server(config)
    server = await serve(backend, config, host, config.sandbox.port if port is None else port)
    admin = await serve_http(
        admin_app(backend, events), host, config.sandbox.admin_port if admin_port is None else admin_port
    )
    return RunningSandbox(config, backend, server, events, admin)
