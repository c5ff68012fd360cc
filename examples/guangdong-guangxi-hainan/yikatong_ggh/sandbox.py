"""The 粤桂琼 sandbox's protocol server: JSON-RPC 2.0 over HTTP in front of the region's card and medical systems.

Registered under the entry-point group ``yikatong.sandboxes`` as ``guangdong-guangxi-hainan``; ``yikatong up``
starts it with the back-end :func:`regions.sandbox.build_backend` made from the region file.

**Transport.** Every call is one ``POST /rpc`` with a JSON-RPC 2.0 request object
``{"jsonrpc": "2.0", "id": <number or string>, "method": "...", "params": {...}}`` (no batches, no
notifications) and these headers:

* ``Authorization: Bearer <api_key>``: the channel key the region issued to the caller (``options.api_key``);
* ``Idempotency-Key: <message id>`` on every write (``card.apply``, ``card.change``, ``card.replace``,
  ``care.file``, ``bill.settle``, ``bill.reverse``, ``standin.advise``): 1–64 printable ASCII characters. The
  region deduplicates on it: a repeat with the same params gets the first answer, with other params error 3001.

HTTP 200 carries every JSON-RPC answer, result or error. Only the transport fails otherwise: 401 for a missing or
wrong key (error -32001), 503 when the system is down or busy (-32050 / -32051, nothing was processed), 500 for
an internal failure (-32603). Those errors answer ``"id": null``; so do -32700 and -32600.

**Values.** Money is integer fen. Dates are ``YYYYMMDD``; times RFC 3339 with an offset. Codes::

    card status     F 封存 sealed, Z 正常 normal, G 挂失 lost, S 锁定 locked, L 临时挂失 temporarily lost,
                    X 注销 cancelled
    settlement      Y settled, C 撤销 reversed, Z 冲正 corrected, N never seen
    sex             1 male, 2 female
    insurance type  310 职工 employee, 390 居民 resident
    visit           MZ 门诊 outpatient, ZY 住院 inpatient
    catalogue class A 甲, B 乙, C 丙, W 目录外 out of catalogue
    filing type     YDAZ retiree resettled, YDJZ long-term resident, CZYD working away (long term);
                    ZZZY referral, JZQJ emergency, QTLS other (temporary)
    stage           01 submitted, 02 bank account opened, 03 at card factory, 04 keys loaded,
                    05 ready at outlet, 06 mailed, 07 issued, 99 failed
    delivery        WD outlet, YJ mail
    card op         QY 启用 enable, LG 临时挂失 report loss, JG 解挂 cancel loss (BH 补换 in conflicts)
    replace reason  GS lost, SH damaged, DQ expired, BG information changed
    service         JT transit, TSG library, BWG museum, JQ scenic spot, GY park

**Methods** (params → result)::

    system.ping       {} → {region, time}
    person.exists     {ssn} → {exists}
    card.get          {ssn, card_no, chip_code?, name?} → {card, holder, insurances}
    card.apply        {ssn, name, insured_area, delivery} → <application>
    card.change       {person, op} → <card>
    card.replace      {person, reason} → <application>
    card.progress     {ssn, name} → <application> (the latest)
    care.file         备案 {person, treatment_area, type, from, until} → {filing_no, treatment_area, type, from, until}
    bill.preview      预结算 <bill> → {split}; changes nothing (Idempotency-Key optional)
    bill.settle       结算 <bill> → {msg_id, settlement_no, split}; msg_id is the call's Idempotency-Key
    bill.outcome      {msg_id} → <outcome>
    bill.correct      冲正 {msg_id} → <outcome> after the correction; harmless to repeat
    bill.reverse      撤销 {msg_id, ssn, reason?} → <outcome>; the Idempotency-Key is the reversal's own id
    standin.advise    {card_no, issuing_area, service, venue_area, granted_at, confirmed_at} → the advice as
                      recorded, {advice_id, ..., repeat}; advice_id is the call's Idempotency-Key

    <card>        {card_no, chip_code, issuing_area, status, gen, expires}
    holder        {ssn, name, sex, birth};  insurances [{area, type}]
    <application> {app_no, stage, history: [{stage, at}], fail_reason, card: <card> once issued, else null}
    person        {ssn, name, card_no, chip_code, issuing_area} (card writes need ssn, card_no and name;
                  medical calls need ssn, and check name when given)
    <bill>        {person, insured_area, treatment_area, institution, level (1-3), visit, readmission,
                  use_account, items: [{code, name, class, qty, price, amount, cap (0 = none)}]}
    split         {total, self_full, over_cap, self_b, in_scope, deductible, fund, account, cash}
    <outcome>     {msg_id, state, settlement: {msg_id, settlement_no, split} or null}

**Errors** (``error.code``, ``error.data``): -32700 not JSON; -32600 not a request object; -32601 no such
method; -32602 bad params, ``{field}`` (a path such as ``items[1].amount``, or ``Idempotency-Key``);
1001 card not found; 1002 holder mismatch; 1003 person not found; 1004 no application; 1005 already holds a
card; 1006 status conflict ``{op, status}``; 2001 not insured; 2002 no such settlement ``{msg_id}``; 2003
settlement not settled ``{msg_id, state}``; 2004 settlement corrected, never to settle ``{msg_id}``; 3001
Idempotency-Key reused with other params ``{request_id}``.

**Faults.** The sandbox's knobs apply to every call before it is read (latency, then down or busy → 503) and,
once a call is processed, the answer delay (``care.*`` and ``bill.*`` are the medical calls an answer delay
scoped to settlement holds back).
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

from aiohttp import web

from adapters.domain import CardStatus, OutcomeState
from adapters.errors import CardStateConflict, IdempotencyKeyReused, Refusal, SettlementNotSettled
from adapters.jsonwire import FieldError, Fields, is_message_id
from regions.backend import Backend
from regions.config import ConfigError, RegionConfig
from regions.sandbox import HttpServer, serve_http, server_tls
from yikatong_ggh import dialect
from yikatong_ggh.dialect import Code, Method
from yikatong_ggh.methods import Methods

log = logging.getLogger(__name__)
_dumps = partial(json.dumps, ensure_ascii=False)

FAULTS = {"down": (Code.SYSTEM_DOWN, "系统维护中 system down"), "busy": (Code.SYSTEM_BUSY, "系统繁忙 system busy")}


class RpcFailure(Exception):
    """A call answered with an error object (``call_id`` None: the call could not be read)."""

    def __init__(
        self, code: Code, message: str, data: Any = None, *, http_status: int = 200, call_id: object = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.data, self.http_status = code, message, data, http_status
        self.call_id = call_id


def _answer(call_id: object, *, result: Any = None, failure: RpcFailure | None = None) -> web.Response:
    body: dict[str, Any] = {"jsonrpc": dialect.JSONRPC, "id": call_id}
    if failure is None:
        body["result"] = result
        return web.json_response(body, dumps=_dumps)
    body["error"] = {"code": int(failure.code), "message": failure.message}
    if failure.data is not None:
        body["error"]["data"] = failure.data
    return web.json_response(body, status=failure.http_status, dumps=_dumps)


def _refusal(exc: Refusal) -> RpcFailure:
    """A back-end refusal as the region's error object."""
    code, meta = dialect.REFUSALS.code(exc), exc.metadata
    if code is None:
        log.error("guangdong-guangxi-hainan sandbox has no error code for %s", type(exc).__name__)
        return RpcFailure(Code.INTERNAL_ERROR, "internal error", http_status=500)
    data: dict[str, str] | None = None
    if isinstance(exc, CardStateConflict):
        status = dialect.code_of(dialect.CARD_STATUS, CardStatus[meta["status"]])
        data = {"op": dialect.op_code(meta["action"]), "status": status}
    elif isinstance(exc, SettlementNotSettled):
        state = dialect.code_of(dialect.SETTLEMENT_STATE, OutcomeState(meta["state"]))
        data = {"msg_id": meta["settlement_id"], "state": state}
    elif isinstance(exc, IdempotencyKeyReused):
        data = {"request_id": meta["request_id"]}
    elif "request_id" in meta:  # settlements not found or corrected name their message id
        data = {"msg_id": meta["request_id"]}
    return RpcFailure(code, exc.message, data)


def _request(raw: bytes) -> tuple[object, Method, Fields]:
    """The call id, method and params of a request object."""
    try:
        parsed: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RpcFailure(Code.PARSE_ERROR, "parse error: the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise RpcFailure(Code.INVALID_REQUEST, "the body must be one request object (no batches)")
    call_id = parsed.get("id")
    if parsed.get("jsonrpc") != dialect.JSONRPC or isinstance(call_id, bool) or not isinstance(call_id, int | str):
        raise RpcFailure(Code.INVALID_REQUEST, 'a request needs "jsonrpc": "2.0" and a number or string id')
    name = parsed.get("method")
    try:
        method = Method(name if isinstance(name, str) else "")
    except ValueError:
        raise RpcFailure(Code.METHOD_NOT_FOUND, f"no method {name!r}", call_id=call_id) from None
    params = parsed.get("params", {})
    if not isinstance(params, dict):
        raise RpcFailure(Code.INVALID_PARAMS, "params must be a JSON object", {"field": "params"}, call_id=call_id)
    return call_id, method, Fields(params)


def _message_id(request: web.Request, method: Method) -> str:
    value = request.headers.get(dialect.IDEMPOTENCY_HEADER, "")
    if (value or method in dialect.WRITES) and not is_message_id(value):
        raise FieldError(dialect.IDEMPOTENCY_HEADER, "must be 1 to 64 printable ASCII characters")
    return value


class Endpoint:
    """The ``POST /rpc`` handler: fault knobs, the channel key, then one method.

    Args:
        backend: the region's systems and fault knobs.
        api_key: the channel key callers must present.
    """

    def __init__(self, backend: Backend, api_key: str) -> None:
        self.faults, self.methods = backend.faults, Methods(backend)
        self._authorization = f"Bearer {api_key}"

    async def handle(self, request: web.Request) -> web.Response:
        fault = await self.faults.before_call()
        if fault is not None:
            code, message = FAULTS.get(fault, (Code.SYSTEM_BUSY, fault))
            return _answer(None, failure=RpcFailure(code, message, http_status=503))
        if request.headers.get(dialect.AUTHORIZATION_HEADER) != self._authorization:
            failure = RpcFailure(Code.UNAUTHORIZED, "channel key refused", http_status=401)
            return _answer(None, failure=failure)
        try:
            raw = await request.read()
        except ConnectionResetError:  # the caller gave up before its body arrived: there is no one to answer
            return web.Response(status=400)
        try:
            call_id, method, params = _request(raw)
        except RpcFailure as failure:
            response = _answer(failure.call_id, failure=failure)
            await self.faults.after_call()
            return response
        response = self._call(request, call_id, method, params)
        await self.faults.after_call(settlement=method in dialect.MEDICAL)
        return response

    def _call(self, request: web.Request, call_id: object, method: Method, params: Fields) -> web.Response:
        try:
            result = self.methods.table[method](params, _message_id(request, method))
        except FieldError as exc:
            return _answer(call_id, failure=RpcFailure(Code.INVALID_PARAMS, str(exc), {"field": exc.field}))
        except Refusal as exc:
            return _answer(call_id, failure=_refusal(exc))
        except Exception:
            log.exception("guangdong-guangxi-hainan sandbox failed on %s", method.value)
            return _answer(call_id, failure=RpcFailure(Code.INTERNAL_ERROR, "internal error", http_status=500))
        return _answer(call_id, result=result)


def create_app(backend: Backend, *, api_key: str) -> web.Application:
    """The region's web application: one route, ``POST /rpc``."""
    app = web.Application()
    app.router.add_post(dialect.PATH, Endpoint(backend, api_key).handle)
    return app


async def serve(backend: Backend, config: RegionConfig, host: str, port: int) -> HttpServer:
    """Start the region's protocol server on ``host:port`` (port 0 picks a free one).

    Args:
        backend: the region's card and medical systems and its fault knobs.
        config: the region's configuration (resolved); ``options.api_key`` is the channel key callers must present,
            ``sandbox.tls_cert`` and ``sandbox.tls_key`` make it HTTPS and ``sandbox.tls_client_ca`` names the CA
            whose client certificate it requires as well.
        host: interface to listen on.
        port: port to listen on.

    Returns:
        The running server, with its address.

    Raises:
        ConfigError: ``options.api_key`` is missing.
    """
    api_key = config.options.get("api_key", "")
    if not api_key:
        raise ConfigError(
            config.source, "options.api_key", api_key, "is required by the guangdong-guangxi-hainan sandbox"
        )
    return await serve_http(create_app(backend, api_key=api_key), host, port, server_tls(config))
