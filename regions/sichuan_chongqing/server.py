"""The 川渝 sandbox's protocol server: resource-style REST in front of the region's card system.

Routes (every request signed, see ``adapters.sichuan_chongqing.signing``)::

    GET  /v2/ping                               liveness
    GET  /v2/cards/{cardNo}?idNo=&name=&cardSn= card, person and insurances
    GET  /v2/persons/{idNo}                     200 if the region knows the person, else 404 / 4041
    POST /v2/applications                       {requestId, idNo, name, insuredArea, delivery}
    GET  /v2/applications/latest?idNo=&name=    the person's latest application
    POST /v2/cards/{cardNo}/status-changes      {requestId, idNo, name, cardSn, action}
    POST /v2/cards/{cardNo}/replacements        {requestId, idNo, name, cardSn, reason}

Error codes (HTTP status, code): bad input 400 ``4000``; bad signature 401 ``4010``; stale timestamp 401
``4011``; holder mismatch 403 ``4030``; card, person, application not found 404 ``4040``/``4041``/``4042``;
state conflict 409 ``4090`` (data: action and status); already holds a card 409 ``4091``; requestId reused
with another body 409 ``4092``; down or busy 503 ``5030``. ``requestId`` is the card system's message id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from adapters.domain import CardAction, CardStatus, Delivery, ReplaceReason
from adapters.errors import (
    ApplicationNotFound,
    CardAlreadyHeld,
    CardNotFound,
    CardStateConflict,
    HolderMismatch,
    HolderNotFound,
    IdempotencyKeyReused,
    Refusal,
)
from adapters.sichuan_chongqing import signing
from regions.backend import Backend
from regions.cardsystem import CardSystem
from regions.config import ConfigError, RegionConfig
from regions.faults import Faults
from regions.sichuan_chongqing import wire

log = logging.getLogger(__name__)

# The card system's refusals on the wire: HTTP status and code.
REFUSALS: dict[type[Refusal], tuple[int, str]] = {
    HolderMismatch: (403, "4030"),
    CardNotFound: (404, "4040"),
    HolderNotFound: (404, "4041"),
    ApplicationNotFound: (404, "4042"),
    CardStateConflict: (409, "4090"),
    CardAlreadyHeld: (409, "4091"),
    IdempotencyKeyReused: (409, "4092"),
}


def _refusal_reply(exc: Refusal) -> web.Response:
    status, code = REFUSALS.get(type(exc), (500, wire.INTERNAL))
    data: dict[str, str] | None = None
    if isinstance(exc, CardStateConflict):
        data = {"action": exc.metadata["action"], "status": wire.STATUS_CODES[CardStatus[exc.metadata["status"]]]}
    elif isinstance(exc, IdempotencyKeyReused):
        data = {"requestId": exc.metadata["request_id"]}
    return wire.reply(code, exc.message, data, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns every failure into an envelope; malformed input is a 400, never a 500."""
    try:
        return await handler(request)
    except wire.BadInput as exc:
        return wire.reply(wire.BAD_INPUT, str(exc), status=400)
    except Refusal as exc:
        return _refusal_reply(exc)
    except web.HTTPException as exc:  # no such route or method, body too large
        code = wire.NO_SUCH_RESOURCE if exc.status == 404 else f"{exc.status}0"
        return wire.reply(code, exc.reason, status=exc.status)
    except Exception:
        # The route's pattern, not the path: paths carry card numbers, which logs must not.
        route = request.match_info.route.resource
        log.exception("sichuan-chongqing sandbox failed on %s %s", request.method, route.canonical if route else "?")
        return wire.reply(wire.INTERNAL, "internal error", status=500)


def _guard(faults: Faults, paas_id: str, secret: str, now: Callable[[], float]) -> Middleware:
    """Faults first (a down system reads nothing), then the signature and the timestamp."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if await faults.before_call() is not None:
            return wire.reply(wire.UNAVAILABLE, "system busy, try again later", status=503)
        raw = await request.read()
        problem = signing.check(request.headers, raw, paas_id=paas_id, secret=secret, now=now())
        if problem is not None:
            return wire.reply(problem, "request signature refused", status=401)
        return await handler(request)

    return guard


class Resources:
    """The route handlers: each reads its input, calls the card system once and encodes the answer."""

    def __init__(self, system: CardSystem, now: Callable[[], float]) -> None:
        self.system = system
        self.now = now

    async def ping(self, _: web.Request) -> web.Response:
        return wire.ok({"region": self.system.region_id, "time": int(self.now())})

    async def card(self, request: web.Request) -> web.Response:
        record = self.system.record(
            wire.query(request, "idNo"),
            request.match_info["cardNo"],
            wire.query(request, "cardSn", required=False),
            wire.query(request, "name", required=False),
        )
        return wire.ok(wire.record_json(record))

    async def person(self, request: web.Request) -> web.Response:
        id_no = request.match_info["idNo"]
        if not self.system.knows(id_no):
            raise HolderNotFound("the region has no record of this person", metadata={})
        return wire.ok({"idNo": id_no})

    async def apply(self, request: web.Request) -> web.Response:
        fields = await wire.body(request)
        application = self.system.apply(
            wire.text(fields, "requestId"),
            wire.text(fields, "idNo"),
            wire.text(fields, "name"),
            wire.area(fields, "insuredArea"),
            wire.choice(fields, "delivery", Delivery),
        )
        return wire.ok(wire.application_json(application), status=201)

    async def latest_application(self, request: web.Request) -> web.Response:
        application = self.system.application(wire.query(request, "idNo"), wire.query(request, "name"))
        return wire.ok(wire.application_json(application))

    async def change_status(self, request: web.Request) -> web.Response:
        fields = await wire.body(request)
        card = self.system.change(
            wire.text(fields, "requestId"),
            wire.text(fields, "idNo"),
            request.match_info["cardNo"],
            wire.text(fields, "cardSn"),
            wire.text(fields, "name"),
            wire.choice(fields, "action", CardAction),
        )
        return wire.ok(wire.card_json(card))

    async def replace(self, request: web.Request) -> web.Response:
        fields = await wire.body(request)
        application = self.system.replace_card(
            wire.text(fields, "requestId"),
            wire.text(fields, "idNo"),
            request.match_info["cardNo"],
            wire.text(fields, "cardSn"),
            wire.text(fields, "name"),
            wire.choice(fields, "reason", ReplaceReason).value,
        )
        return wire.ok(wire.application_json(application), status=201)


def create_app(
    system: CardSystem, faults: Faults, *, paas_id: str, secret: str, now: Callable[[], float] = time.time
) -> web.Application:
    """The region's web application; ``now`` is the clock signatures are checked against."""
    app = web.Application(middlewares=[_errors, _guard(faults, paas_id, secret, now)])
    resources = Resources(system, now)
    app.router.add_get("/v2/ping", resources.ping)
    app.router.add_get("/v2/cards/{cardNo}", resources.card)
    app.router.add_get("/v2/persons/{idNo}", resources.person)
    app.router.add_post("/v2/applications", resources.apply)
    app.router.add_get("/v2/applications/latest", resources.latest_application)
    app.router.add_post("/v2/cards/{cardNo}/status-changes", resources.change_status)
    app.router.add_post("/v2/cards/{cardNo}/replacements", resources.replace)
    return app


@dataclass
class SichuanChongqingServer:
    """The running protocol server.

    Attributes:
        address: the base URL the adapter's ``endpoint`` setting should hold.
    """

    address: str
    _runner: web.AppRunner

    async def stop(self) -> None:
        """Stop listening and finish the requests in flight."""
        await self._runner.cleanup()


def _option(config: RegionConfig, key: str) -> str:
    value = config.options.get(key, "")
    if not value:
        raise ConfigError(config.source, f"options.{key}", value, "is required by the sichuan-chongqing sandbox")
    return value


async def serve(backend: Backend, config: RegionConfig, host: str, port: int) -> SichuanChongqingServer:
    """Start the region's protocol server on ``host:port`` (port 0 picks a free one).

    Args:
        backend: the region's card and medical systems and its fault knobs.
        config: the region's configuration; ``options.paas_id`` and ``options.secret`` sign requests.
        host: interface to listen on.
        port: port to listen on.

    Returns:
        The running server, with its address.
    """
    system, faults = backend.cards, backend.faults
    app = create_app(system, faults, paas_id=_option(config, "paas_id"), secret=_option(config, "secret"))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return SichuanChongqingServer(f"http://{host}:{bound}", runner)
