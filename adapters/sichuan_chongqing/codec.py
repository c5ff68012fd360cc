"""The 川渝 wire format as the adapter reads it: camelCase JSON in, domain dataclasses out.

Every reader raises :class:`MalformedReply` (a ``ValueError``) when the region's JSON is not shaped as the
protocol says; the client turns that into ``RegionProtocolError`` at its one choke point.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from adapters.domain import (
    Application,
    Card,
    CardRecord,
    CardStatus,
    Gender,
    Holder,
    Insurance,
    InsuranceType,
    Stage,
    StageEvent,
)

T = TypeVar("T")

OK = "0000"

STATUSES: dict[str, CardStatus] = {
    "00": CardStatus.SEALED,
    "01": CardStatus.NORMAL,
    "02": CardStatus.LOST,
    "03": CardStatus.LOCKED,
    "04": CardStatus.TEMPORARILY_LOST,
    "09": CardStatus.CANCELLED,
}
GENDERS: dict[str, Gender] = {"M": Gender.MALE, "F": Gender.FEMALE}
INSURANCE_TYPES: dict[str, InsuranceType] = {t.value: t for t in InsuranceType}
STAGES: dict[str, Stage] = {s.value: s for s in Stage}


class MalformedReply(ValueError):
    """The region's reply does not follow the protocol."""


class ErrorReply(Exception):
    """A well-formed reply whose envelope code is not ``0000``.

    Attributes:
        status: the HTTP status.
        code: the envelope's string code, e.g. ``"4040"``.
        message: the region's message.
        data: the envelope's ``data`` (details of some refusals), or ``None``.
    """

    def __init__(self, status: int, code: str, message: str, data: Any) -> None:
        super().__init__(f"HTTP {status}, code {code}: {message}")
        self.status, self.code, self.message, self.data = status, code, message, data


def dumps(body: Mapping[str, Any]) -> bytes:
    """A request body as sent and signed."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def envelope(status: int, payload: bytes) -> Any:
    """The ``data`` of a successful reply.

    Raises:
        ErrorReply: the envelope carries an error code (or the HTTP status is not 2xx).
        MalformedReply: the payload is not an envelope.
    """
    try:
        parsed: Any = json.loads(payload)
    except ValueError:
        raise MalformedReply(f"HTTP {status} reply is not JSON: {payload[:80]!r}") from None
    code = field(parsed, "code", str)
    if code != OK or not 200 <= status < 300:
        message = parsed.get("message")
        raise ErrorReply(status, code, message if isinstance(message, str) else "", parsed.get("data"))
    return parsed.get("data")


def field(obj: Any, key: str, kind: type[T]) -> T:
    """``obj[key]``, which must be of type ``kind``."""
    if not isinstance(obj, dict):
        raise MalformedReply(f"expected a JSON object holding {key}, got {type(obj).__name__}")
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MalformedReply(f"{key} must be {kind.__name__}, got {value!r}")
    return value


def coded(obj: Any, key: str, table: Mapping[str, T]) -> T:
    """``obj[key]``, a string code looked up in ``table``."""
    code = field(obj, key, str)
    if code not in table:
        raise MalformedReply(f"{key} {code!r} is not a known code")
    return table[code]


def card(obj: Any) -> Card:
    """A card from its wire form."""
    return Card(
        card_number=field(obj, "cardNo", str),
        card_identification_code=field(obj, "cardSn", str),
        issuing_area=field(obj, "issuingArea", str),
        status=coded(obj, "status", STATUSES),
        generation=field(obj, "generation", int),
        valid_until=field(obj, "validUntil", str),
    )


def holder(obj: Any) -> Holder:
    """A cardholder from the wire's ``person``."""
    return Holder(
        social_security_number=field(obj, "idNo", str),
        name=field(obj, "name", str),
        gender=coded(obj, "gender", GENDERS),
        birth_date=field(obj, "birthDate", str),
    )


def insurance(obj: Any) -> Insurance:
    """One insurance from its wire form."""
    return Insurance(
        insured_area=field(obj, "insuredArea", str),
        insurance_type=coded(obj, "insuranceType", INSURANCE_TYPES),
    )


def card_record(data: Any) -> CardRecord:
    """The reply of ``GET /v2/cards/{cardNo}``."""
    return CardRecord(
        holder=holder(field(data, "person", dict)),
        card=card(field(data, "card", dict)),
        insurances=tuple(insurance(i) for i in field(data, "insurances", list)),
    )


def application(data: Any) -> Application:
    """An application from its wire form, with its card once issued."""
    issued = data.get("card") if isinstance(data, dict) else None
    return Application(
        application_id=field(data, "applicationId", str),
        stage=coded(data, "stage", STAGES),
        history=tuple(StageEvent(coded(e, "stage", STAGES), field(e, "at", str)) for e in field(data, "history", list)),
        failure_reason=field(data, "failureReason", str),
        card=card(issued) if issued is not None else None,
    )


def nothing(_: Any) -> None:
    """For replies whose data the adapter does not need."""
