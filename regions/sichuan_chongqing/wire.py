"""The 川渝 wire format as the region's server writes and reads it: camelCase JSON, string codes.

Replies share one envelope, ``{"code": "0000", "message": "...", "data": {...}}``. A code is four digits:
the HTTP status's three, then a detail digit. Card statuses travel as two-character codes (``"01"`` normal),
settlement states likewise (``"01"`` settled, ``"02"`` reversed, ``"03"`` corrected), genders as
``"M"``/``"F"``, dates as ``YYYY-MM-DD`` and times as RFC 3339. Money is integer fen in fields ending ``Fen``.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from functools import partial
from typing import Any, TypeVar

from aiohttp import web

from adapters.domain import (
    Application,
    Bill,
    BillLine,
    Card,
    CardCredential,
    CardRecord,
    CardStatus,
    CatalogueClass,
    FileRemoteCare,
    Filing,
    FilingType,
    Gender,
    Holder,
    Insurance,
    OutcomeState,
    RegionSettlement,
    ServiceKind,
    SettlementOutcome,
    Split,
    StandInAdvice,
    VisitType,
)
from adapters.identifiers import InvalidIdentifier, parse_card_number
from adapters.jsonwire import is_rfc3339

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
SETTLEMENT_STATE_CODES: dict[OutcomeState, str] = {
    OutcomeState.SETTLED: "01",
    OutcomeState.REVERSED: "02",
    OutcomeState.CORRECTED: "03",
}
MAX_FEN = 2**63 - 1
"""The largest amount the protocol carries (an int64, as in the hub's API)."""

_AREA = re.compile(r"[0-9]{6}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MESSAGE_ID = re.compile(r"[\x20-\x7e]{1,64}")
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


def filing_json(filing: Filing) -> dict[str, Any]:
    """A remote-care filing (备案) as the region records it."""
    return {
        "filingId": filing.filing_id,
        "treatmentArea": filing.treatment_area,
        "filingType": filing.filing_type.value,
        "validFrom": filing.valid_from,
        "validUntil": filing.valid_until,
    }


def split_json(split: Split) -> dict[str, int]:
    """How a bill is paid, every part in integer fen."""
    return {
        "totalFen": split.total_fen,
        "fullSelfPayFen": split.full_self_pay_fen,
        "overCapFen": split.over_cap_fen,
        "bClassSelfPayFen": split.b_class_self_pay_fen,
        "inScopeFen": split.in_scope_fen,
        "deductibleFen": split.deductible_fen,
        "fundPayFen": split.fund_pay_fen,
        "accountPayFen": split.account_pay_fen,
        "cashPayFen": split.cash_pay_fen,
    }


def settlement_json(settlement: RegionSettlement) -> dict[str, Any]:
    """A settlement as the region booked it, under the caller's message id."""
    return {
        "requestId": settlement.request_id,
        "settlementId": settlement.region_settlement_id,
        "split": split_json(settlement.split),
    }


def outcome_json(request_id: str, outcome: SettlementOutcome) -> dict[str, Any]:
    """What the region knows of a settlement message id it has seen (never ``NOT_FOUND``: that is a 404)."""
    return {
        "requestId": request_id,
        "state": SETTLEMENT_STATE_CODES[outcome.state],
        "settlement": settlement_json(outcome.settlement) if outcome.settlement else None,
    }


def advice_json(advice: StandInAdvice) -> dict[str, Any]:
    """A stand-in advice as the region recorded it."""
    return {
        "adviceId": advice.advice_id,
        "cardNo": advice.card_number,
        "issuingArea": advice.issuing_area,
        "serviceKind": advice.service_kind.value,
        "venueArea": advice.venue_area,
        "grantedAt": advice.granted_at,
        "statusConfirmedAt": advice.status_confirmed_at,
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


def optional_text(fields: dict[str, Any], key: str) -> str:
    """An optional string field of a body; ``""`` when absent."""
    value = fields.get(key, "")
    if not isinstance(value, str):
        raise BadInput(f"{key} must be a string")
    return value


def integer(fields: dict[str, Any], key: str, low: int = 0, high: int = MAX_FEN) -> int:
    """A required whole-number field (never a boolean or a decimal) from ``low`` to ``high``."""
    value = fields.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadInput(f"{key} must be a whole number from {low} to {high}")
    return value


def boolean(fields: dict[str, Any], key: str) -> bool:
    """A required ``true``/``false`` field."""
    value = fields.get(key)
    if not isinstance(value, bool):
        raise BadInput(f"{key} must be true or false")
    return value


def date(fields: dict[str, Any], key: str) -> str:
    """A required calendar date field, ``YYYY-MM-DD``."""
    value = text(fields, key)
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{key} must be a date YYYY-MM-DD") from None
    return value


def moment(fields: dict[str, Any], key: str) -> str:
    """A required RFC 3339 time field with its offset, returned as sent."""
    value = text(fields, key)
    if not is_rfc3339(value):
        raise BadInput(f"{key} must be an RFC 3339 time with an offset")
    return value


def card_number(fields: dict[str, Any], key: str) -> str:
    """A required card number field: 8 of [0-9A-Z] and its check character."""
    try:
        return parse_card_number(text(fields, key))
    except InvalidIdentifier as exc:
        raise BadInput(f"{key} {exc.problem}") from None


def message_id(request: web.Request) -> str:
    """The settlement message id in the path: 1–64 printable ASCII characters."""
    value = request.match_info["msgId"]
    if not _MESSAGE_ID.fullmatch(value):
        raise BadInput("msgId must be 1 to 64 printable ASCII characters")
    return value


def credential(fields: dict[str, Any]) -> CardCredential:
    """The insured person (``idNo``, ``name``) and, for the record, the card they presented."""
    return CardCredential(
        social_security_number=text(fields, "idNo"),
        card_number=optional_text(fields, "cardNo"),
        card_identification_code=optional_text(fields, "cardSn"),
        issuing_area=optional_text(fields, "issuingArea"),
        holder_name=optional_text(fields, "name"),
    )


def filing_request(fields: dict[str, Any]) -> FileRemoteCare:
    """The body of ``POST /v2/filings``."""
    valid_from, valid_until = date(fields, "validFrom"), date(fields, "validUntil")
    if valid_until < valid_from:
        raise BadInput("validUntil must not be before validFrom")
    return FileRemoteCare(
        request_id=text(fields, "requestId"),
        credential=credential(fields),
        treatment_area=area(fields, "treatmentArea"),
        filing_type=choice(fields, "filingType", FilingType),
        valid_from=valid_from,
        valid_until=valid_until,
    )


def bill_line(obj: Any, index: int) -> BillLine:
    """One element of a bill's ``lines``; a bad field is named with its index."""
    if not isinstance(obj, dict):
        raise BadInput(f"lines[{index}] must be a JSON object")
    try:
        return BillLine(
            item_code=text(obj, "itemCode"),
            item_name=text(obj, "itemName"),
            catalogue_class=choice(obj, "catalogueClass", CatalogueClass),
            quantity=integer(obj, "quantity", low=1),
            unit_price_fen=integer(obj, "unitPriceFen"),
            amount_fen=integer(obj, "amountFen"),
            price_cap_fen=integer(obj, "priceCapFen"),
        )
    except BadInput as exc:
        raise BadInput(f"lines[{index}].{exc}") from None


def bill(fields: dict[str, Any], request_id: str) -> Bill:
    """The body of ``POST /v2/settlement-previews`` and ``POST /v2/settlements``."""
    lines = fields.get("lines")
    if not isinstance(lines, list) or not lines:
        raise BadInput("lines must be a non-empty list")
    return Bill(
        request_id=request_id,
        credential=credential(fields),
        insured_area=area(fields, "insuredArea"),
        treatment_area=area(fields, "treatmentArea"),
        institution_id=text(fields, "institutionId"),
        hospital_level=integer(fields, "hospitalLevel", low=1, high=3),
        visit_type=choice(fields, "visitType", VisitType),
        later_admission=boolean(fields, "laterAdmission"),
        lines=tuple(bill_line(line, i) for i, line in enumerate(lines)),
        use_personal_account=boolean(fields, "usePersonalAccount"),
    )


def stand_in_advice(fields: dict[str, Any]) -> StandInAdvice:
    """The body of ``POST /v2/stand-in-advices``; ``adviceId`` is its message id."""
    advice_id = text(fields, "adviceId")
    if not _MESSAGE_ID.fullmatch(advice_id):
        raise BadInput("adviceId must be 1 to 64 printable ASCII characters")
    return StandInAdvice(
        advice_id=advice_id,
        card_number=card_number(fields, "cardNo"),
        issuing_area=area(fields, "issuingArea"),
        service_kind=choice(fields, "serviceKind", ServiceKind),
        venue_area=area(fields, "venueArea"),
        granted_at=moment(fields, "grantedAt"),
        status_confirmed_at=moment(fields, "statusConfirmedAt"),
    )
