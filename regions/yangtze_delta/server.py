"""长三角 sandbox server: an HTTP/JSON envelope protocol modelled on the national medical-insurance interface.

One endpoint, ``POST /fsi/api/rsfComIfsService/callService``. Every request is an envelope::

    {"infno": "1101", "msgid": "<caller's request id>", "mdtrtarea_admvs": "310104",
     "insuplc_admdvs": "310104", "infver": "V1.0", "input": {"data": {...}}}

and every processed request is answered with HTTP 200 and::

    {"infcode": 0, "err_msg": "", "inf_refmsgid": "<the region's own id>", "output": {...}}
    {"infcode": -1, "err_code": "CARD_NOT_FOUND", "err_msg": "...", "inf_refmsgid": "...", "output": {}}

A request the system refuses to process (down, busy) gets HTTP 503 with ``err_code`` ``SYSTEM_DOWN`` or
``SYSTEM_BUSY``. A malformed envelope or an unknown ``infno`` gets ``infcode`` -1 / ``BAD_INPUT``.

=====  ===============================  ==========================================================
infno  service                          ``input.data``
=====  ===============================  ==========================================================
1101   card and person query            certno, mdtrt_cert_no (card number), card_sn, psn_name
1161   is the person known              certno
2801   apply for a card (申领)          certno, psn_name, insuplc_admdvs, delivery (OUTLET, MAIL)
2802   card status change               certno, mdtrt_cert_no, card_sn, psn_name,
                                        action (ENABLE, REPORT_LOSS, CANCEL_LOSS)
2803   replace a card (补换)            certno, mdtrt_cert_no, card_sn, psn_name,
                                        reason (LOST, DAMAGED, EXPIRED, INFORMATION_CHANGED)
2804   application progress             certno, psn_name
2501   remote-care filing (备案)        certno, mdtrt_cert_no, card_sn, card_admdvs, psn_name,
                                        mdtrtarea_admvs (treatment area), fil_type, begndate, enddate
                                        → ``filinfo``: trt_dcla_detl_sn (filing id), mdtrtarea_admvs,
                                        fil_type, begndate, enddate
2206   pre-settlement (预结算)          the bill: certno, mdtrt_cert_no, card_sn, card_admdvs, psn_name,
                                        insuplc_admdvs, mdtrtarea_admvs, fixmedins_code, medins_lv,
                                        med_type, later_adm_flag, acct_used_flag, medfee_sumamt,
                                        feedetail [med_list_codg, medins_list_name, chrgitm_lv, cnt,
                                        pric, det_item_fee_sumamt, pric_uplmt_amt ("0.00" = no cap)]
                                        → ``setlinfo``: the split (below), no side effects
2207   settlement (结算)                the bill, as 2206 → ``setlinfo``: setl_id, setl_msgid and the split
2208   settlement reversal (撤销)       omsgid (the settlement's msgid), certno, memo (reason)
                                        → omsgid, setl_stas
2601   correction (冲正)                omsgid (the settlement's msgid), oinfno ("2207")
                                        → omsgid, setl_stas
5201   settlement outcome query         omsgid → omsgid, setl_stas, setlinfo (null when never settled)
9001   heartbeat                        (none)
9102   stand-in advice (同城待遇)       msgid = the advice id; mdtrt_cert_no, card_admdvs, serv_type
                                        (TRANSIT, LIBRARY, MUSEUM, SCENIC_SPOT, PARK), use_admdvs (venue
                                        area), grnt_time, stas_cfm_time (RFC 3339) → ``advcinfo``: the
                                        advice as recorded; see ``regions.yangtze_delta.advice``
=====  ===============================  ==========================================================

The split in ``setlinfo``, every amount a yuan string with two decimals (``"123.45"``): medfee_sumamt
(total), fulamt_ownpay_amt (full self-pay), overlmt_selfpay (over price cap), preselfpay_amt (乙类 self-pay
first), inscp_scp_amt (in scope), act_pay_dedc (deductible), hifp_pay (fund), acct_pay (personal account),
psn_cash_pay (cash). Bill amounts must add up: ``det_item_fee_sumamt`` = ``cnt`` × ``pric`` on each line
and ``medfee_sumamt`` = the lines' sum. Codes (``chrgitm_lv``, ``med_type``, ``fil_type``, ``setl_stas``,
flags) are listed in ``regions.yangtze_delta.settlement`` and shared with the adapter through
``adapters.yangtze_delta.protocol``. Every call is processed first and answered after
the fault knobs' answer delay, so a caller that gives up early may miss a write that happened.

Writes are deduplicated on ``msgid``: the same ``msgid`` with the same input replays the first answer, with
a different input it is refused with ``MSGID_REUSED`` (a filing replays the first filing; an advice, 9102,
is acknowledged with the advice first recorded under its msgid). A settlement (2207) is keyed on its
``msgid``; 2208, 2601 and 5201 name it as ``omsgid``. Settlement refusals: ``NOT_INSURED``,
``SETTLEMENT_NOT_FOUND``, ``SETTLEMENT_NOT_SETTLED`` (output: omsgid, setl_stas), ``SETTLEMENT_CORRECTED``
(a 2207 whose msgid was corrected before).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from adapters.domain import Application, Card, CardAction, CardRecord, CardStatus, Delivery, Insurance, ReplaceReason
from adapters.errors import CardStateConflict, Refusal
from adapters.yangtze_delta import protocol
from adapters.yangtze_delta.protocol import BEIJING_TIME, ERR_CODES, FAULT_CODES, MAKE_STAS_CODES, OPT_TIME, PATH
from regions.backend import Backend
from regions.config import RegionConfig
from regions.sandbox import HttpServer, serve_http, server_tls
from regions.yangtze_delta import advice, fields, settlement
from regions.yangtze_delta.fields import BadInput

REGION_AREA = "310000"  # prefix of the region's own message ids, as the national interface does

Output = dict[str, Any]
Handler = Callable[[Backend, str, Mapping[str, Any]], Output]

# --- reading the envelope ---------------------------------------------------------------------------------


def _envelope(body: bytes) -> tuple[str, str, Mapping[str, Any]]:
    """``(infno, msgid, input.data)`` of a request body."""
    try:
        envelope = json.loads(body)
    except ValueError:
        raise BadInput("body is not JSON") from None
    if not isinstance(envelope, dict):
        raise BadInput("body must be a JSON object")
    infno, msgid = fields.text(envelope, "infno"), fields.message_id(envelope, "msgid")
    payload = envelope.get("input", {})
    data = payload.get("data", {}) if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise BadInput("input.data must be a JSON object")
    return infno, msgid, data


# --- writing the output -----------------------------------------------------------------------------------


def _card(card: Card) -> Output:
    return {
        "card_no": card.card_number,
        "card_sn": card.card_identification_code,
        "card_admdvs": card.issuing_area,
        "card_stas": str(card.status.value),
        "card_ver": str(card.generation),
        "card_expy_date": card.valid_until,
    }


def _insurance(insurance: Insurance) -> Output:
    return {"insutype": protocol.INSUTYPE_CODES[insurance.insurance_type], "insuplc_admdvs": insurance.insured_area}


def _record(record: CardRecord) -> Output:
    holder = record.holder
    return {
        "baseinfo": {
            "psn_cert_type": "01",
            "certno": holder.social_security_number,
            "psn_name": holder.name,
            "gend": holder.gender.value,
            "brdy": holder.birth_date,
        },
        "cardinfo": _card(record.card),
        "insuinfo": [_insurance(i) for i in record.insurances],
    }


def _opt_time(rfc3339: str) -> str:
    return dt.datetime.fromisoformat(rfc3339).astimezone(BEIJING_TIME).strftime(OPT_TIME)


def _application(app: Application) -> Output:
    return {
        "appyinfo": {
            "appy_id": app.application_id,
            "make_stas": MAKE_STAS_CODES[app.stage],
            "fail_rea": app.failure_reason,
            "hist": [{"make_stas": MAKE_STAS_CODES[e.stage], "opt_time": _opt_time(e.at)} for e in app.history],
            "cardinfo": _card(app.card) if app.card else None,
        }
    }


# --- the services -----------------------------------------------------------------------------------------


def _query_card(backend: Backend, _msgid: str, data: Mapping[str, Any]) -> Output:
    return _record(backend.cards.record(*_card_fields(data)))


def _query_person(backend: Backend, _msgid: str, data: Mapping[str, Any]) -> Output:
    return {"psn_exist": "1" if backend.cards.knows(fields.text(data, "certno")) else "0"}


def _apply(backend: Backend, msgid: str, data: Mapping[str, Any]) -> Output:
    delivery = Delivery(fields.name(data, "delivery", tuple(d.value for d in Delivery)))
    ssn, holder = fields.text(data, "certno"), fields.text(data, "psn_name")
    return _application(backend.cards.apply(msgid, ssn, holder, fields.text(data, "insuplc_admdvs"), delivery))


def _change(backend: Backend, msgid: str, data: Mapping[str, Any]) -> Output:
    action = CardAction(fields.name(data, "action", tuple(a.value for a in CardAction)))
    return {"cardinfo": _card(backend.cards.change(msgid, *_card_fields(data), action))}


def _replace(backend: Backend, msgid: str, data: Mapping[str, Any]) -> Output:
    reason = fields.name(data, "reason", tuple(r.value for r in ReplaceReason))
    return _application(backend.cards.replace_card(msgid, *_card_fields(data), reason))


def _card_fields(data: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (
        fields.text(data, "certno"),
        fields.text(data, "mdtrt_cert_no"),
        fields.text(data, "card_sn", required=False),
        fields.text(data, "psn_name", required=False),
    )


def _progress(backend: Backend, _msgid: str, data: Mapping[str, Any]) -> Output:
    return _application(backend.cards.application(fields.text(data, "certno"), fields.text(data, "psn_name")))


def _heartbeat(_backend: Backend, _msgid: str, _data: Mapping[str, Any]) -> Output:
    return {"sys_time": dt.datetime.now(BEIJING_TIME).strftime(OPT_TIME)}


SERVICES: dict[str, Handler] = {
    protocol.QUERY_CARD: _query_card,
    protocol.QUERY_PERSON: _query_person,
    protocol.APPLY: _apply,
    protocol.CHANGE: _change,
    protocol.REPLACE: _replace,
    protocol.PROGRESS: _progress,
    **settlement.SERVICES,
    **advice.SERVICES,
    protocol.HEARTBEAT: _heartbeat,
}


def _refusal(exc: Refusal) -> tuple[str, Output]:
    """The ``err_code`` and ``output`` of a refusal."""
    code = ERR_CODES.code(exc) or exc.reason
    if isinstance(exc, CardStateConflict):
        status = CardStatus[exc.metadata["status"]]
        return code, {"action": exc.metadata["action"], "card_stas": str(status.value)}
    return code, settlement.refusal_details(exc)


class YangtzeDeltaServer:
    """The 长三角 sandbox's one envelope endpoint, in front of the region's systems.

    Args:
        backend: the region's card and medical systems and its fault knobs.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.faults = backend.faults
        self._serial = itertools.count(1)

    def app(self) -> web.Application:
        """The aiohttp application with the one envelope endpoint."""
        app = web.Application()
        app.router.add_post(PATH, self.call_service)
        return app

    async def call_service(self, request: web.Request) -> web.Response:
        """Answer one envelope: apply the fault knobs, dispatch on ``infno``, then delay the answer if told to."""
        fault = await self.faults.before_call()
        if fault is not None:
            return self._reply(-1, FAULT_CODES[fault], f"system {fault}, request not processed", status=503)
        infno, reply = self._process(await request.read())
        await self.faults.after_call(settlement=infno in protocol.MEDICAL)
        return reply

    def _process(self, body: bytes) -> tuple[str, web.Response]:
        """``(infno, reply)`` of one envelope (infno "" when the envelope is unreadable)."""
        infno = ""
        try:
            infno, msgid, data = _envelope(body)
            service = SERVICES.get(infno)
            if service is None:
                raise BadInput(f"unknown infno {infno}")
            output = service(self.backend, msgid, data)
        except BadInput as exc:
            return infno, self._reply(-1, protocol.BAD_INPUT, str(exc))
        except Refusal as exc:
            code, details = _refusal(exc)
            return infno, self._reply(-1, code, exc.message, details)
        return infno, self._reply(0, "", "", output)

    def _reply(
        self, infcode: int, err_code: str, err_msg: str, output: Output | None = None, *, status: int = 200
    ) -> web.Response:
        now = dt.datetime.now(BEIJING_TIME).strftime("%Y%m%d%H%M%S")
        body: Output = {
            "infcode": infcode,
            "err_msg": err_msg,
            "inf_refmsgid": f"{REGION_AREA}{now}{next(self._serial):010d}",
            "output": output or {},
        }
        if err_code:
            body["err_code"] = err_code
        return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def serve(backend: Backend, config: RegionConfig, host: str, port: int) -> HttpServer:
    """Start the 长三角 protocol server for ``backend`` on ``host:port`` (0 picks a free port).

    Args:
        backend: the region's card and medical systems and its fault knobs.
        config: the region's configuration (resolved): ``sandbox.tls_cert`` and ``sandbox.tls_key`` make it HTTPS,
            ``sandbox.tls_client_ca`` names the CA whose client certificate it requires (its only authentication
            of callers).
        host: address to listen on.
        port: port to listen on; 0 picks a free one.

    Returns:
        The running server; ``address`` says where it listens, ``stop()`` shuts it down.
    """
    return await serve_http(YangtzeDeltaServer(backend).app(), host, port, server_tls(config))
