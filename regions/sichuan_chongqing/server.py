"""The 川渝 sandbox's protocol server: resource-style REST in front of the region's card and medical systems.

Routes (every request signed, see ``adapters.sichuan_chongqing.protocol``; checked in
``regions.sichuan_chongqing.signature``)::

    GET  /v2/ping                               liveness
    GET  /v2/cards/{cardNo}?idNo=&name=&cardSn= card, person and insurances
    GET  /v2/persons/{idNo}                     200 if the region knows the person, else 404 / 4041
    POST /v2/applications                       {requestId, idNo, name, insuredArea, delivery}
    GET  /v2/applications/latest?idNo=&name=    the person's latest application
    POST /v2/cards/{cardNo}/status-changes      {requestId, idNo, name, cardSn, action}
    POST /v2/cards/{cardNo}/replacements        {requestId, idNo, name, cardSn, reason}

Medical settlement at the insured place (DESIGN §4.5); money is integer fen::

    POST /v2/filings                            备案 {requestId, <person>, treatmentArea, filingType,
                                                validFrom, validUntil} → 201 {filingId, treatmentArea,
                                                filingType, validFrom, validUntil}
    POST /v2/settlement-previews                预结算 {<bill>} (requestId optional) → {split}; changes nothing
    POST /v2/settlements                        结算 {requestId, <bill>} → 201 {requestId, settlementId, split}
    GET  /v2/settlements/{msgId}                {requestId, state, settlement}; never seen → 404 / 4044
    POST /v2/settlements/{msgId}/correction     冲正 {} → the outcome after the correction
    POST /v2/settlements/{msgId}/reversal       撤销 {requestId, idNo, reason} → the outcome (state "02")

``<person>`` is ``idNo`` with the optional ``name`` (checked when given), ``cardNo``, ``cardSn`` and
``issuingArea``. ``<bill>`` is ``<person>``, ``insuredArea``, ``treatmentArea``, ``institutionId``,
``hospitalLevel`` (1–3), ``visitType`` (``OUTPATIENT``/``INPATIENT``), ``laterAdmission``,
``usePersonalAccount`` and a non-empty ``lines`` list of ``{itemCode, itemName, catalogueClass (A, B, C,
OUT_OF_CATALOGUE), quantity, unitPriceFen, amountFen, priceCapFen (0 = none)}``. ``split`` holds
``totalFen``, ``fullSelfPayFen``, ``overCapFen``, ``bClassSelfPayFen``, ``inScopeFen``, ``deductibleFen``,
``fundPayFen``, ``accountPayFen``, ``cashPayFen``. ``state`` is ``"01"`` settled, ``"02"`` reversed or
``"03"`` corrected; ``settlement`` is null for a message id corrected before it was seen. A settlement's
``requestId`` is its message id: a repeat with the same bill replays the first answer. The reversal's
``requestId`` is the reversal's own message id.

Resident services (DESIGN §4.7): the hub reports a service it granted on a cached card status while the
region could not be reached::

    POST /v2/stand-in-advices                   {adviceId, cardNo, issuingArea, serviceKind (TRANSIT,
                                                LIBRARY, MUSEUM, SCENIC_SPOT, PARK), venueArea, grantedAt,
                                                statusConfirmedAt} → 201 the advice as recorded

``adviceId`` is the advice's message id: a repeat is answered 200 with the same body and records nothing new.
``grantedAt`` and ``statusConfirmedAt`` (when the region last confirmed the NORMAL status the grant relied
on) are RFC 3339 times with an offset, kept as sent.

Error codes (HTTP status, code): bad input 400 ``4000``; bad signature 401 ``4010``; stale timestamp 401
``4011``; nonce already used 401 ``4012``; holder mismatch 403 ``4030``; card, person, application not found
404 ``4040``/``4041``/``4042``; no medical insurance 404 ``4043``; settlement not found 404 ``4044`` (data:
requestId); state conflict 409 ``4090`` (data: action and status); already holds a card 409 ``4091``; requestId
reused with another body 409 ``4092`` (data: requestId); settlement not settled (reversed or corrected) 409
``4093`` (data: requestId and state); settlement corrected, never to settle 409 ``4094`` (data: requestId); down
or busy 503 ``5030``.
``requestId`` is the card or medical system's message id. Every request that passes the signature check is
processed, then answered after the fault knobs' answer delay.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from adapters.domain import CardCredential, CardStatus, OutcomeState
from adapters.errors import CardStateConflict, HolderNotFound, Refusal, SettlementNotFound, SettlementNotSettled
from adapters.jsonwire import FieldError
from adapters.sichuan_chongqing import codec, protocol
from regions.backend import Backend
from regions.config import ConfigError, RegionConfig
from regions.faults import Faults
from regions.sandbox import HttpServer, serve_http, server_tls
from regions.sichuan_chongqing import signature, wire

log = logging.getLogger(__name__)


def _refusal_data(exc: Refusal) -> dict[str, str] | None:
    if isinstance(exc, CardStateConflict):
        status = protocol.STATUS_CODES[CardStatus[exc.metadata["status"]]]
        return {"action": exc.metadata["action"], "status": status}
    if isinstance(exc, SettlementNotSettled):
        state = protocol.SETTLEMENT_STATE_CODES[OutcomeState(exc.metadata["state"])]
        return {"requestId": exc.metadata["settlement_id"], "state": state}
    if "request_id" in exc.metadata:  # reused ids, corrected or unknown settlements
        return {"requestId": exc.metadata["request_id"]}
    return None


def _refusal_reply(exc: Refusal) -> web.Response:
    code = protocol.REFUSALS.code(exc) or protocol.INTERNAL
    return wire.reply(code, exc.message, _refusal_data(exc), status=protocol.http_status(code))


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's reply, or an envelope for its failure; malformed input is a 400, never a 500."""
    try:
        return await handler(request)
    except (wire.BadInput, FieldError) as exc:
        return wire.reply(protocol.BAD_INPUT, str(exc), status=400)
    except Refusal as exc:
        return _refusal_reply(exc)
    except web.HTTPException as exc:  # no such route or method, body too large
        code = protocol.NO_SUCH_RESOURCE if exc.status == 404 else f"{exc.status}0"
        return wire.reply(code, exc.reason, status=exc.status)
    except Exception:
        # The route's pattern, not the path: paths carry card numbers, which logs must not.
        route = request.match_info.route.resource
        log.exception("sichuan-chongqing sandbox failed on %s %s", request.method, route.canonical if route else "?")
        return wire.reply(protocol.INTERNAL, "internal error", status=500)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns every failure into an envelope, the guard's own (e.g. a body too large) included."""
    return await _answer(request, handler)


def _guard(faults: Faults, paas_id: str, secret: str, now: Callable[[], float]) -> Middleware:
    """Faults first (a down system reads nothing), then the signature, the timestamp and the nonce.

    A request that gets through is processed, refusals included, and only then waits out the answer delay:
    the region has acted even when the caller gives up first.
    """

    nonces = signature.NonceWindow()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if await faults.before_call() is not None:
            return wire.reply(protocol.UNAVAILABLE, "system busy, try again later", status=503)
        received = signature.Received(
            request.method, request.rel_url.raw_path, request.query.items(), request.headers, await request.read()
        )
        problem = signature.check(received, paas_id=paas_id, secret=secret, now=now(), nonces=nonces)
        if problem is not None:
            return wire.reply(problem, REFUSED_SIGNATURES[problem], status=401)
        response = await _answer(request, handler)
        await faults.after_call(settlement=request.path.startswith(protocol.MEDICAL_PREFIXES))
        return response

    return guard


REFUSED_SIGNATURES = {
    protocol.BAD_SIGNATURE: "request signature refused",
    protocol.STALE_TIMESTAMP: "request signature refused: timestamp outside the window",
    protocol.REPLAYED_NONCE: "request signature refused: nonce already used",
}


class Resources:
    """The route handlers: each reads its input, calls the card or medical system once and encodes the answer."""

    def __init__(self, backend: Backend, now: Callable[[], float]) -> None:
        self.system = backend.cards
        self.medical = backend.medical
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
        return wire.ok(codec.record_json(record))

    async def person(self, request: web.Request) -> web.Response:
        id_no = request.match_info["idNo"]
        if not self.system.knows(id_no):
            raise HolderNotFound("the region has no record of this person", metadata={})
        return wire.ok({"idNo": id_no})

    async def apply(self, request: web.Request) -> web.Response:
        a = codec.apply(await wire.body(request))
        holder = (a.social_security_number, a.holder_name)
        application = self.system.apply(a.request_id, *holder, a.insured_area, a.delivery)
        return wire.ok(codec.application_json(application), status=201)

    async def latest_application(self, request: web.Request) -> web.Response:
        application = self.system.application(wire.query(request, "idNo"), wire.query(request, "name"))
        return wire.ok(codec.application_json(application))

    async def change_status(self, request: web.Request) -> web.Response:
        change = codec.change(await wire.body(request), request.match_info["cardNo"])
        card = self.system.change(change.request_id, *self._holder(change.credential), change.action)
        return wire.ok(codec.card_json(card))

    async def replace(self, request: web.Request) -> web.Response:
        replacement = codec.replacement(await wire.body(request), request.match_info["cardNo"])
        holder = self._holder(replacement.credential)
        application = self.system.replace_card(replacement.request_id, *holder, replacement.reason.value)
        return wire.ok(codec.application_json(application), status=201)

    @staticmethod
    def _holder(credential: CardCredential) -> tuple[str, str, str, str]:
        """A card write's SSN, card number, identification code and name, as the card system takes them."""
        c = credential
        return c.social_security_number, c.card_number, c.card_identification_code, c.holder_name

    # --- medical settlement -----------------------------------------------------------------------

    async def file(self, request: web.Request) -> web.Response:
        filing_request = codec.filing_request(await wire.body(request))
        filing = self.medical.file(filing_request.request_id, filing_request)
        return wire.ok(codec.filing_json(filing), status=201)

    async def preview(self, request: web.Request) -> web.Response:
        fields = await wire.body(request)
        split = self.medical.pre_settle(codec.bill(fields, fields.optional("requestId")))
        return wire.ok({"split": codec.split_json(split)})

    async def settle(self, request: web.Request) -> web.Response:
        fields = await wire.body(request)
        settlement = self.medical.settle(codec.bill(fields, fields.text("requestId")))
        return wire.ok(codec.settlement_json(settlement), status=201)

    async def outcome(self, request: web.Request) -> web.Response:
        msg_id = wire.message_id(request)
        return self._outcome(msg_id)

    async def correct(self, request: web.Request) -> web.Response:
        msg_id = wire.message_id(request)
        await wire.body(request)  # an empty object: the path names all a correction needs
        self.medical.correct(msg_id)
        return self._outcome(msg_id)

    async def reverse(self, request: web.Request) -> web.Response:
        msg_id = wire.message_id(request)
        self.medical.reverse(codec.reversal(await wire.body(request), msg_id))
        return self._outcome(msg_id)

    def _outcome(self, msg_id: str) -> web.Response:
        outcome = self.medical.outcome(msg_id)
        if outcome.state is OutcomeState.NOT_FOUND:
            raise SettlementNotFound("the region has no settlement of this msgId", metadata={"request_id": msg_id})
        return wire.ok(codec.outcome_json(msg_id, outcome))

    # --- resident services ------------------------------------------------------------------------

    async def advise(self, request: web.Request) -> web.Response:
        advice = codec.advice(await wire.body(request))
        repeat = advice.advice_id in self.system.advices
        self.system.record_advice(advice)
        return wire.ok(codec.advice_json(self.system.advices[advice.advice_id]), status=200 if repeat else 201)


def create_app(backend: Backend, *, paas_id: str, secret: str, now: Callable[[], float] = time.time) -> web.Application:
    """The region's web application; ``now`` is the clock signatures are checked against."""
    app = web.Application(middlewares=[_errors, _guard(backend.faults, paas_id, secret, now)])
    resources = Resources(backend, now)
    app.router.add_get(protocol.PING, resources.ping)
    app.router.add_get(protocol.CARD, resources.card)
    app.router.add_get(protocol.PERSON, resources.person)
    app.router.add_post(protocol.APPLICATIONS, resources.apply)
    app.router.add_get(protocol.LATEST_APPLICATION, resources.latest_application)
    app.router.add_post(protocol.STATUS_CHANGES, resources.change_status)
    app.router.add_post(protocol.REPLACEMENTS, resources.replace)
    app.router.add_post(protocol.FILINGS, resources.file)
    app.router.add_post(protocol.SETTLEMENT_PREVIEWS, resources.preview)
    app.router.add_post(protocol.SETTLEMENTS, resources.settle)
    app.router.add_get(protocol.SETTLEMENT, resources.outcome)
    app.router.add_post(protocol.CORRECTION, resources.correct)
    app.router.add_post(protocol.REVERSAL, resources.reverse)
    app.router.add_post(protocol.STAND_IN_ADVICES, resources.advise)
    return app


def _option(config: RegionConfig, key: str) -> str:
    value = config.options.get(key, "")
    if not value:
        raise ConfigError(config.source, f"options.{key}", value, "is required by the sichuan-chongqing sandbox")
    return value


async def serve(backend: Backend, config: RegionConfig, host: str, port: int) -> HttpServer:
    """Start the region's protocol server on ``host:port`` (port 0 picks a free one).

    Args:
        backend: the region's card and medical systems and its fault knobs.
        config: the region's configuration (resolved); ``options.paas_id`` and ``options.secret`` sign requests,
            ``sandbox.tls_cert`` and ``sandbox.tls_key`` make it HTTPS (the region asks for no client certificate:
            it authenticates callers by their signatures).
        host: interface to listen on.
        port: port to listen on.

    Returns:
        The running server, with its address.
    """
    app = create_app(backend, paas_id=_option(config, "paas_id"), secret=_option(config, "secret"))
    return await serve_http(app, host, port, server_tls(config))
