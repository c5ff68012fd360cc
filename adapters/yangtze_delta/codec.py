"""Canonical domain objects to and from the 长三角 wire fields.

Encoders build an envelope's ``input.data``; decoders read its ``output``. A decoder raises ``KeyError``,
``TypeError`` or ``ValueError`` on anything it cannot read; the client turns that into
:class:`~adapters.errors.RegionProtocolError`.

Wire values: ``gend`` "1"/"2"; ``brdy`` ``YYYY-MM-DD``; ``card_stas`` the numeric status code as a string
("0" SEALED … "9" CANCELLED); ``insutype`` "310" employee, "390" resident; ``make_stas`` "01"–"07" for the
production stages and "99" for a failure; ``opt_time`` ``YYYY-MM-DD HH:MM:SS`` Beijing time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from adapters.domain import (
    Application,
    ApplyCard,
    Card,
    CardCredential,
    CardRecord,
    CardStatus,
    ChangeCard,
    Gender,
    Holder,
    Insurance,
    InsuranceType,
    ReplaceCard,
    Stage,
    StageEvent,
)

Data = dict[str, str]

BEIJING_TIME = dt.timezone(dt.timedelta(hours=8))
INSUTYPES = {"310": InsuranceType.EMPLOYEE, "390": InsuranceType.RESIDENT}
STAGES = {
    "01": Stage.SUBMITTED,
    "02": Stage.BANK_ACCOUNT_OPENED,
    "03": Stage.AT_CARD_FACTORY,
    "04": Stage.KEYS_LOADED,
    "05": Stage.READY_AT_OUTLET,
    "06": Stage.MAILED,
    "07": Stage.ISSUED,
    "99": Stage.FAILED,
}


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
    at = dt.datetime.strptime(opt_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING_TIME)
    return at.astimezone(dt.UTC).isoformat(timespec="seconds")


def decode_application(output: Mapping[str, Any]) -> Application:
    """The output of 2801, 2803 and 2804: ``appyinfo``."""
    info = _table(output, "appyinfo")
    card = info.get("cardinfo")
    return Application(
        application_id=_text(info, "appy_id"),
        stage=STAGES[_text(info, "make_stas")],
        history=tuple(
            StageEvent(STAGES[_text(row, "make_stas")], _rfc3339(_text(row, "opt_time"))) for row in _rows(info, "hist")
        ),
        failure_reason=str(info.get("fail_rea") or ""),
        card=None if card is None else decode_card(_table(info, "cardinfo")),
    )


def ignore_output(_output: Mapping[str, Any]) -> None:
    """For services whose output carries nothing the hub needs (9001)."""
