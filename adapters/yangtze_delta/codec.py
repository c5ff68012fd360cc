"""Canonical domain objects to and from the 长三角 wire fields; the codes are :mod:`adapters.yangtze_delta.protocol`'s.

Encoders build an envelope's ``input.data``; decoders read its ``output``. A decoder raises ``KeyError``,
``TypeError`` or ``ValueError`` on anything it cannot read; the client turns that into
:class:`~adapters.errors.RegionProtocolError`.

Wire values: ``gend`` "1"/"2"; ``brdy`` ``YYYY-MM-DD``; ``card_stas`` the numeric status code as a string
("0" SEALED … "9" CANCELLED); ``insutype``, ``make_stas``, ``chrgitm_lv``, ``med_type``, ``fil_type`` and
``setl_stas`` the protocol's code tables; ``opt_time`` ``YYYY-MM-DD HH:MM:SS`` Beijing time; flags "1"/"0".
Every settlement amount is a yuan string with exactly two decimals (``"123.45"``), converted to and from integer
fen without floats (:func:`yuan`, :func:`parse_yuan`).

Stand-in advice (9102): ``serv_type`` the service kind's name (``TRANSIT`` …); ``grnt_time`` and
``stas_cfm_time`` RFC 3339 as the hub wrote them (not ``opt_time``'s Beijing wall clock), so that the region
records the hub's moments exactly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from adapters.domain import (
    Application,
    ApplyCard,
    Bill,
    BillLine,
    Card,
    CardCredential,
    CardRecord,
    CardStatus,
    ChangeCard,
    FileRemoteCare,
    Filing,
    Gender,
    Holder,
    Insurance,
    OutcomeState,
    RegionSettlement,
    ReplaceCard,
    Reversal,
    SettlementOutcome,
    Split,
    StageEvent,
    StandInAdvice,
)
from adapters.yangtze_delta.protocol import (
    BEIJING_TIME,
    CHRGITM_LV_CODES,
    FIL_TYPE,
    FIL_TYPE_CODES,
    INSUTYPES,
    MAKE_STAS,
    MED_TYPE_CODES,
    OPT_TIME,
    SETL_STAS,
    SETTLE,
    SPLIT_FIELDS,
    flag,
)

Data = dict[str, Any]

# ASCII digits only (``\d`` would accept other scripts' digits); at most 19 before the point.
_YUAN = re.compile(r"(-?)(0|[1-9][0-9]{0,18})\.([0-9]{2})")
_INT64_MAX = 2**63 - 1


# --- amounts ------------------------------------------------------------------------------------------


def yuan(fen: int) -> str:
    """Integer fen as the wire's yuan string: ``12345`` → ``"123.45"``, ``1`` → ``"0.01"``."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def parse_yuan(text: str) -> int:
    """The wire's yuan string as integer fen: ``"123.45"`` → ``12345``.

    Raises:
        ValueError: ``text`` is not ``[-]digits.dd`` (no exponent, no spaces, exactly two decimals, no
            leading zeros, not ``-0.00``) or does not fit in int64.
    """
    match = _YUAN.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a yuan amount with two decimals")
    fen = int(match[2]) * 100 + int(match[3])
    if fen > _INT64_MAX or (match[1] and not fen):
        raise ValueError(f"{text!r} is out of range or a negative zero")
    return -fen if match[1] else fen


# --- input.data ---------------------------------------------------------------------------------------


def card_data(credential: CardCredential) -> Data:
    """The fields that name a card and its holder (services 1101, 2802, 2803)."""
    return {
        "certno": credential.social_security_number,
        "mdtrt_cert_no": credential.card_number,
        "card_sn": credential.card_identification_code,
        "psn_name": credential.holder_name,
    }


def apply_data(request: ApplyCard) -> Data:
    """``input.data`` of 2801 (apply)."""
    return {
        "certno": request.social_security_number,
        "psn_name": request.holder_name,
        "insuplc_admdvs": request.insured_area,
        "delivery": request.delivery.value,
        "delivery_admdvs": request.delivery_area,
    }


def change_data(request: ChangeCard) -> Data:
    """``input.data`` of 2802 (status change)."""
    return {**card_data(request.credential), "action": request.action.value}


def replace_data(request: ReplaceCard) -> Data:
    """``input.data`` of 2803 (replace)."""
    return {**card_data(request.credential), "reason": request.reason.value}


def _person_card(credential: CardCredential) -> Data:
    return {**card_data(credential), "card_admdvs": credential.issuing_area}


def filing_data(request: FileRemoteCare) -> Data:
    """``input.data`` of 2501 (remote-care filing)."""
    return {
        **_person_card(request.credential),
        "mdtrtarea_admvs": request.treatment_area,
        "fil_type": FIL_TYPE_CODES[request.filing_type],
        "begndate": request.valid_from,
        "enddate": request.valid_until,
    }


def _fee_row(line: BillLine) -> Data:
    return {
        "med_list_codg": line.item_code,
        "medins_list_name": line.item_name,
        "chrgitm_lv": CHRGITM_LV_CODES[line.catalogue_class],
        "cnt": str(line.quantity),
        "pric": yuan(line.unit_price_fen),
        "det_item_fee_sumamt": yuan(line.amount_fen),
        "pric_uplmt_amt": yuan(line.price_cap_fen),
    }


def bill_data(bill: Bill) -> Data:
    """``input.data`` of 2206 (pre-settlement) and 2207 (settlement)."""
    return {
        **_person_card(bill.credential),
        "insuplc_admdvs": bill.insured_area,
        "mdtrtarea_admvs": bill.treatment_area,
        "fixmedins_code": bill.institution_id,
        "medins_lv": str(bill.hospital_level),
        "med_type": MED_TYPE_CODES[bill.visit_type],
        "later_adm_flag": flag(bill.later_admission),
        "acct_used_flag": flag(bill.use_personal_account),
        "medfee_sumamt": yuan(sum(line.amount_fen for line in bill.lines)),
        "feedetail": [_fee_row(line) for line in bill.lines],
    }


def reversal_data(request: Reversal) -> Data:
    """``input.data`` of 2208 (reversal): the settlement's msgid as ``omsgid``."""
    return {"omsgid": request.settlement_request_id, "certno": request.social_security_number, "memo": request.reason}


def correction_data(request_id: str) -> Data:
    """``input.data`` of 2601 (correction) of the settlement sent with msgid ``request_id``."""
    return {"omsgid": request_id, "oinfno": SETTLE}


def outcome_data(request_id: str) -> Data:
    """``input.data`` of 5201 (outcome query) of the settlement sent with msgid ``request_id``."""
    return {"omsgid": request_id}


def advice_data(advice: StandInAdvice) -> Data:
    """``input.data`` of 9102 (stand-in advice); the advice id travels as the envelope's ``msgid``."""
    return {
        "mdtrt_cert_no": advice.card_number,
        "card_admdvs": advice.issuing_area,
        "serv_type": advice.service_kind.value,
        "use_admdvs": advice.venue_area,
        "grnt_time": advice.granted_at,
        "stas_cfm_time": advice.status_confirmed_at,
    }


def person_data(social_security_number: str, holder_name: str = "") -> Data:
    """``input.data`` of the person services 1161 and 2804."""
    data = {"certno": social_security_number}
    if holder_name:
        data["psn_name"] = holder_name
    return data


# --- output -------------------------------------------------------------------------------------------


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string, not {type(value).__name__}")
    return value


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data[key]
    if not isinstance(value, dict):
        raise TypeError(f"{key} must be an object, not {type(value).__name__}")
    return value


def _rows(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise TypeError(f"{key} must be a list of objects")
    return value


def decode_card(data: Mapping[str, Any]) -> Card:
    """A ``cardinfo`` object."""
    return Card(
        card_number=_text(data, "card_no"),
        card_identification_code=_text(data, "card_sn"),
        issuing_area=_text(data, "card_admdvs"),
        status=CardStatus(int(_text(data, "card_stas"))),
        generation=int(_text(data, "card_ver")),
        valid_until=_text(data, "card_expy_date"),
    )


def decode_holder(data: Mapping[str, Any]) -> Holder:
    """A ``baseinfo`` object."""
    return Holder(
        social_security_number=_text(data, "certno"),
        name=_text(data, "psn_name"),
        gender=Gender(_text(data, "gend")),
        birth_date=dt.date.fromisoformat(_text(data, "brdy")).isoformat(),
    )


def decode_insurance(data: Mapping[str, Any]) -> Insurance:
    """One ``insuinfo`` row."""
    return Insurance(_text(data, "insuplc_admdvs"), INSUTYPES[_text(data, "insutype")])


def decode_record(output: Mapping[str, Any]) -> CardRecord:
    """The output of 1101: ``baseinfo``, ``cardinfo`` and ``insuinfo``."""
    return CardRecord(
        holder=decode_holder(_table(output, "baseinfo")),
        card=decode_card(_table(output, "cardinfo")),
        insurances=tuple(decode_insurance(row) for row in _rows(output, "insuinfo")),
    )


def decode_known(output: Mapping[str, Any]) -> bool:
    """The output of 1161: ``psn_exist`` "1" or "0"."""
    flag = _text(output, "psn_exist")
    if flag not in ("0", "1"):
        raise ValueError(f"psn_exist must be 0 or 1, not {flag!r}")
    return flag == "1"


def decode_card_output(output: Mapping[str, Any]) -> Card:
    """The output of 2802: ``cardinfo``."""
    return decode_card(_table(output, "cardinfo"))


def _rfc3339(opt_time: str) -> str:
    at = dt.datetime.strptime(opt_time, OPT_TIME).replace(tzinfo=BEIJING_TIME)
    return at.astimezone(dt.UTC).isoformat(timespec="seconds")


def _stage_event(row: Mapping[str, Any]) -> StageEvent:
    return StageEvent(MAKE_STAS[_text(row, "make_stas")], _rfc3339(_text(row, "opt_time")))


def decode_application(output: Mapping[str, Any]) -> Application:
    """The output of 2801, 2803 and 2804: ``appyinfo``."""
    info = _table(output, "appyinfo")
    card = info.get("cardinfo")
    return Application(
        application_id=_text(info, "appy_id"),
        stage=MAKE_STAS[_text(info, "make_stas")],
        history=tuple(_stage_event(row) for row in _rows(info, "hist")),
        failure_reason=str(info.get("fail_rea") or ""),
        card=None if card is None else decode_card(_table(info, "cardinfo")),
    )


def _fen(data: Mapping[str, Any], key: str) -> int:
    return parse_yuan(_text(data, key))


def decode_split(data: Mapping[str, Any]) -> Split:
    """The amounts of a ``setlinfo`` object."""
    return Split(**{part: _fen(data, wire) for part, wire in SPLIT_FIELDS.items()})


def decode_pre_settlement(output: Mapping[str, Any]) -> Split:
    """The output of 2206: ``setlinfo`` with the amounts."""
    return decode_split(_table(output, "setlinfo"))


def _settlement(setlinfo: Mapping[str, Any], request_id: str) -> RegionSettlement:
    msgid = _text(setlinfo, "setl_msgid")
    if msgid != request_id:
        raise ValueError(f"setlinfo is for msgid {msgid!r}, not {request_id!r}")
    return RegionSettlement(request_id, _text(setlinfo, "setl_id"), decode_split(setlinfo))


def decode_settlement(output: Mapping[str, Any], request_id: str) -> RegionSettlement:
    """The output of 2207: ``setlinfo``, which must be that of ``request_id``."""
    return _settlement(_table(output, "setlinfo"), request_id)


def decode_state(code: object) -> OutcomeState:
    """A ``setl_stas`` code."""
    if not isinstance(code, str) or code not in SETL_STAS:
        raise ValueError(f"unknown setl_stas {code!r}")
    return SETL_STAS[code]


def decode_outcome(output: Mapping[str, Any], request_id: str) -> SettlementOutcome:
    """The output of 5201: ``setl_stas`` and, once it settled, the ``setlinfo`` of ``request_id``."""
    state = decode_state(output["setl_stas"])
    setlinfo = output.get("setlinfo")
    if setlinfo is None:
        if state in (OutcomeState.SETTLED, OutcomeState.REVERSED):
            raise ValueError(f"setl_stas {state.value} without setlinfo")
        return SettlementOutcome(state)
    if state is OutcomeState.NOT_FOUND:
        raise ValueError("setlinfo of a settlement that was not found")
    return SettlementOutcome(state, _settlement(_table(output, "setlinfo"), request_id))


def decode_filing(output: Mapping[str, Any]) -> Filing:
    """The output of 2501: ``filinfo``."""
    info = _table(output, "filinfo")
    return Filing(
        filing_id=_text(info, "trt_dcla_detl_sn"),
        treatment_area=_text(info, "mdtrtarea_admvs"),
        filing_type=FIL_TYPE[_text(info, "fil_type")],
        valid_from=dt.date.fromisoformat(_text(info, "begndate")).isoformat(),
        valid_until=dt.date.fromisoformat(_text(info, "enddate")).isoformat(),
    )


def decode_advice_ack(output: Mapping[str, Any], advice_id: str) -> None:
    """The output of 9102: ``advcinfo``, the advice the region recorded, which must be ``advice_id``'s."""
    msgid = _text(_table(output, "advcinfo"), "advc_msgid")
    if msgid != advice_id:
        raise ValueError(f"advcinfo is for msgid {msgid!r}, not {advice_id!r}")


def ignore_output(_output: Mapping[str, Any]) -> None:
    """For services whose output carries nothing the hub needs (9001, 2208, 2601)."""
