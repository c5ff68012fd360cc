"""The 川渝 wire format as the region's server writes and reads it: camelCase JSON, string codes.

Replies share one envelope, ``{"code": "0000", "message": "...", "data": {...}}``. A code is four digits:
the HTTP status's three, then a detail digit. Card statuses travel as two-character codes (``"01"`` normal),
genders as ``"M"``/``"F"``, dates as ``YYYY-MM-DD`` and times as RFC 3339.
"""

from __future__ import annotations

import enum
import json
import re
from functools import partial
from typing import Any, TypeVar

from aiohttp import web

from adapters.domain import Application, Card, CardRecord, CardStatus, Gender, Holder, Insurance

E = TypeVar("E", bound=enum.Enum)

OK = "0000"
BAD_INPUT = "4000"
NO_SUCH_RESOURCE = "4049"
UNAVAILABLE = "5030"
INTERNAL = "5000"

STATUS_CODES: dict[CardStatus, str] = {
    CardStatus.SEALED: "00",
    CardStatus.NORMAL: "01",
    CardStatus.LOST: "02",
    CardStatus.LOCKED: "03",
    CardStatus.TEMPORARILY_LOST: "04",
    CardStatus.CANCELLED: "09",
}
GENDER_CODES: dict[Gender, str] = {Gender.MALE: "M", Gender.FEMALE: "F"}

_AREA = re.compile(r"[0-9]{6}")
_dumps = partial(json.dumps, ensure_ascii=False)


class BadInput(Exception):
    """A request the protocol cannot read; answered HTTP 400 with code ``4000``, naming the field."""


def reply(code: str, message: str, data: Any = None, *, status: int = 200) -> web.Response:
    """One reply in the region's envelope."""
    return web.json_response({"code": code, "message": message, "data": data}, status=status, dumps=_dumps)


def ok(data: Any, *, status: int = 200) -> web.Response:
    """A successful reply carrying ``data``."""
    return reply(OK, "success", data, status=status)


# --- domain → wire ------------------------------------------------------------------------------------


def card_json(card: Card) -> dict[str, Any]:
    """A card as the region describes it."""
    return {
        "cardNo": card.card_number,
        "cardSn": card.card_identification_code,
        "issuingArea": card.issuing_area,
        "status": STATUS_CODES[card.status],
        "generation": card.generation,
        "validUntil": card.valid_until,
    }


def person_json(holder: Holder) -> dict[str, Any]:
    """A cardholder as the region describes them."""
    return {
        "idNo": holder.social_security_number,
        "name": holder.name,
        "gender": GENDER_CODES[holder.gender],
        "birthDate": holder.birth_date,
    }


def insurance_json(insurance: Insurance) -> dict[str, Any]:
    """One insurance of a cardholder."""
    return {"insuranceType": insurance.insurance_type.value, "insuredArea": insurance.insured_area}


def record_json(record: CardRecord) -> dict[str, Any]:
    """A card with its holder and the holder's insurances."""
    return {
        "card": card_json(record.card),
        "person": person_json(record.holder),
        "insurances": [insurance_json(i) for i in record.insurances],
    }


def application_json(application: Application) -> dict[str, Any]:
    """A card application with its stage history (and its card once issued)."""
    return {
        "applicationId": application.application_id,
        "stage": application.stage.value,
        "history": [{"stage": e.stage.value, "at": e.at} for e in application.history],
        "failureReason": application.failure_reason,
        "card": card_json(application.card) if application.card else None,
    }


# --- wire → arguments ---------------------------------------------------------------------------------


def query(request: web.Request, key: str, *, required: bool = True) -> str:
    """A query parameter; a required one must be present and not empty."""
    value = request.query.get(key, "")
    if required and not value:
        raise BadInput(f"query parameter {key} is required")
    return value


async def body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body."""
    try:
        parsed: Any = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise BadInput("the body must be a JSON object")
    return parsed


def text(fields: dict[str, Any], key: str) -> str:
    """A required, non-empty string field of a body."""
    value = fields.get(key)
    if not isinstance(value, str) or not value:
        raise BadInput(f"{key} must be a non-empty string")
    return value


def area(fields: dict[str, Any], key: str) -> str:
    """A required 6-digit area code field of a body."""
    value = text(fields, key)
    if not _AREA.fullmatch(value):
        raise BadInput(f"{key} must be a 6-digit area code")
    return value


def choice(fields: dict[str, Any], key: str, kind: type[E]) -> E:
    """A required field naming one member of ``kind`` by its value."""
    value = text(fields, key)
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise BadInput(f"{key} must be one of {allowed}") from None
