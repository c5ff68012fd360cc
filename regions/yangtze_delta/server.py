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
9001   heartbeat                        (none)
=====  ===============================  ==========================================================

Writes (28xx) are deduplicated on ``msgid``: the same ``msgid`` with the same input replays the first
answer, with a different input it is refused with ``MSGID_REUSED``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from adapters.domain import (
    Application,
    Card,
    CardAction,
    CardRecord,
    CardStatus,
    Delivery,
    Insurance,
    InsuranceType,
    ReplaceReason,
    Stage,
)
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
from regions.backend import Backend
from regions.cardsystem import CardSystem
from regions.config import RegionConfig
from regions.faults import Faults

PATH = "/fsi/api/rsfComIfsService/callService"
BEIJING_TIME = dt.timezone(dt.timedelta(hours=8))
REGION_AREA = "310000"  # prefix of the region's own message ids, as the national interface does

INSUTYPE = {InsuranceType.EMPLOYEE: "310", InsuranceType.RESIDENT: "390"}
MAKE_STAS = {
    Stage.SUBMITTED: "01",
    Stage.BANK_ACCOUNT_OPENED: "02",
    Stage.AT_CARD_FACTORY: "03",
    Stage.KEYS_LOADED: "04",
    Stage.READY_AT_OUTLET: "05",
    Stage.MAILED: "06",
    Stage.ISSUED: "07",
    Stage.FAILED: "99",
}
ERR_CODES: dict[type[Refusal], str] = {
    CardNotFound: "CARD_NOT_FOUND",
    HolderMismatch: "HOLDER_MISMATCH",
    HolderNotFound: "HOLDER_NOT_FOUND",
    ApplicationNotFound: "APPLICATION_NOT_FOUND",
    CardAlreadyHeld: "CARD_ALREADY_HELD",
    CardStateConflict: "CARD_STATE_CONFLICT",
    IdempotencyKeyReused: "MSGID_REUSED",
}
FAULT_CODES = {"down": "SYSTEM_DOWN", "busy": "SYSTEM_BUSY"}

Output = dict[str, Any]
Handler = Callable[[CardSystem, str, Mapping[str, Any]], Output]


class BadInput(Exception):
    """The envelope or its input cannot be read; answered with ``BAD_INPUT``."""


# --- reading the envelope ---------------------------------------------------------------------------------


def _envelope(body: bytes) -> tuple[str, str, Mapping[str, Any]]:
    """``(infno, msgid, input.data)`` of a request body."""
    try:
        envelope = json.loads(body)
    except ValueError:
        raise BadInput("body is not JSON") from None
    if not isinstance(envelope, dict):
        raise BadInput("body must be a JSON object")
    infno, msgid = _text(envelope, "infno"), _text(envelope, "msgid")
    if len(msgid) > 64:
        raise BadInput("msgid is longer than 64 characters")
    payload = envelope.get("input", {})
    data = payload.get("data", {}) if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise BadInput("input.data must be a JSON object")
    return infno, msgid, data


def _text(data: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise BadInput(f"{key} must be a string")
    if required and not value:
        raise BadInput(f"{key} is required")
    return value


def _name(data: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = _text(data, key)
    if value not in allowed:
        raise BadInput(f"{key} must be one of {', '.join(allowed)}")
    return value


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
    return {"insutype": INSUTYPE[insurance.insurance_type], "insuplc_admdvs": insurance.insured_area}


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
    return dt.datetime.fromisoformat(rfc3339).astimezone(BEIJING_TIME).strftime("%Y-%m-%d %H:%M:%S")


def _application(app: Application) -> Output:
    return {
        "appyinfo": {
            "appy_id": app.application_id,
            "make_stas": MAKE_STAS[app.stage],
            "fail_rea": app.failure_reason,
            "hist": [{"make_stas": MAKE_STAS[e.stage], "opt_time": _opt_time(e.at)} for e in app.history],
            "cardinfo": _card(app.card) if app.card else None,
        }
    }


# --- the services -----------------------------------------------------------------------------------------


def _query_card(system: CardSystem, _msgid: str, data: Mapping[str, Any]) -> Output:
    return _record(
        system.record(
            _text(data, "certno"),
            _text(data, "mdtrt_cert_no"),
            _text(data, "card_sn", required=False),
            _text(data, "psn_name", required=False),
        )
    )


def _query_person(system: CardSystem, _msgid: str, data: Mapping[str, Any]) -> Output:
    return {"psn_exist": "1" if system.knows(_text(data, "certno")) else "0"}


def _apply(system: CardSystem, msgid: str, data: Mapping[str, Any]) -> Output:
    delivery = Delivery(_name(data, "delivery", tuple(d.value for d in Delivery)))
    return _application(
        system.apply(msgid, _text(data, "certno"), _text(data, "psn_name"), _text(data, "insuplc_admdvs"), delivery)
    )


def _change(system: CardSystem, msgid: str, data: Mapping[str, Any]) -> Output:
    action = CardAction(_name(data, "action", tuple(a.value for a in CardAction)))
    ssn, number, code, name = _card_fields(data)
    return {"cardinfo": _card(system.change(msgid, ssn, number, code, name, action))}


def _replace(system: CardSystem, msgid: str, data: Mapping[str, Any]) -> Output:
    reason = _name(data, "reason", tuple(r.value for r in ReplaceReason))
    ssn, number, code, name = _card_fields(data)
    return _application(system.replace_card(msgid, ssn, number, code, name, reason))


def _card_fields(data: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (
        _text(data, "certno"),
        _text(data, "mdtrt_cert_no"),
        _text(data, "card_sn", required=False),
        _text(data, "psn_name", required=False),
    )


def _progress(system: CardSystem, _msgid: str, data: Mapping[str, Any]) -> Output:
    return _application(system.application(_text(data, "certno"), _text(data, "psn_name")))


def _heartbeat(_system: CardSystem, _msgid: str, _data: Mapping[str, Any]) -> Output:
    return {"sys_time": dt.datetime.now(BEIJING_TIME).strftime("%Y-%m-%d %H:%M:%S")}


SERVICES: dict[str, Handler] = {
    "1101": _query_card,
    "1161": _query_person,
    "2801": _apply,
    "2802": _change,
    "2803": _replace,
    "2804": _progress,
    "9001": _heartbeat,
}


def _refusal(exc: Refusal) -> tuple[str, Output]:
    """The ``err_code`` and ``output`` of a refusal."""
    code = next((c for cls, c in ERR_CODES.items() if isinstance(exc, cls)), exc.reason)
    if isinstance(exc, CardStateConflict):
        status = CardStatus[exc.metadata["status"]]
        return code, {"action": exc.metadata["action"], "card_stas": str(status.value)}
    return code, {}


class YangtzeDeltaServer:
    """The running protocol server of the 长三角 sandbox.

    Attributes:
        address: the base URL an adapter's ``endpoint`` setting should be, e.g. ``http://127.0.0.1:7111``.
    """

    def __init__(self, system: CardSystem, faults: Faults) -> None:
        self.system = system
        self.faults = faults
        self.address = ""
        self._serial = itertools.count(1)
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application with the one envelope endpoint."""
        app = web.Application()
        app.router.add_post(PATH, self.call_service)
        return app

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (0 picks a free port) and set :attr:`address`."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.address = f"http://{host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def call_service(self, request: web.Request) -> web.Response:
        """Answer one envelope: apply the fault knobs, then dispatch on ``infno``."""
        fault = await self.faults.before_call()
        if fault is not None:
            return self._reply(-1, FAULT_CODES[fault], f"system {fault}, request not processed", status=503)
        try:
            infno, msgid, data = _envelope(await request.read())
            service = SERVICES.get(infno)
            if service is None:
                raise BadInput(f"unknown infno {infno}")
            output = service(self.system, msgid, data)
        except BadInput as exc:
            return self._reply(-1, "BAD_INPUT", str(exc))
        except Refusal as exc:
            code, details = _refusal(exc)
            return self._reply(-1, code, exc.message, details)
        return self._reply(0, "", "", output)

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


async def serve(backend: Backend, config: RegionConfig, host: str, port: int) -> YangtzeDeltaServer:
    """Start the 长三角 protocol server for ``system`` on ``host:port`` (0 picks a free port).

    Args:
        backend: the region's card and medical systems and its fault knobs.
        config: the region's configuration (unused: the protocol has no per-deployment settings).
        host: address to listen on.
        port: port to listen on; 0 picks a free one.

    Returns:
        The running server; ``address`` says where it listens, ``stop()`` shuts it down.
    """
    system, faults = backend.cards, backend.faults
    server = YangtzeDeltaServer(system, faults)
    await server.start(host, port)
    return server
