"""The 川渝 wire format as the adapter writes and reads it: domain dataclasses to camelCase JSON and back.

Money is integer fen in fields ending ``Fen``. Every reader raises :class:`MalformedReply` (a ``ValueError``)
when the region's JSON is not shaped as the protocol says; the client turns that into ``RegionProtocolError``
at its one choke point.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from adapters.domain import (
    Application,
    Bill,
    BillLine,
    Card,
    CardCredential,
    CardRecord,
    CardStatus,
    FileRemoteCare,
    Filing,
    FilingType,
    Gender,
    Holder,
    Insurance,
    InsuranceType,
    OutcomeState,
    RegionSettlement,
    Reversal,
    SettlementOutcome,
    Split,
    Stage,
    StageEvent,
    StandInAdvice,
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
FILING_TYPES: dict[str, FilingType] = {t.value: t for t in FilingType}
SETTLEMENT_STATES: dict[str, OutcomeState] = {
    "01": OutcomeState.SETTLED,
    "02": OutcomeState.REVERSED,
    "03": OutcomeState.CORRECTED,
}


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


def person_body(credential: CardCredential) -> dict[str, str]:
    """The insured person of a medical request, with the card they presented."""
    return {
        "idNo": credential.social_security_number,
        "name": credential.holder_name,
        "cardNo": credential.card_number,
        "cardSn": credential.card_identification_code,
        "issuingArea": credential.issuing_area,
    }


def filing_body(request: FileRemoteCare) -> dict[str, Any]:
    """The body of ``POST /v2/filings``."""
    return {
        "requestId": request.request_id,
        **person_body(request.credential),
        "treatmentArea": request.treatment_area,
        "filingType": request.filing_type.value,
        "validFrom": request.valid_from,
        "validUntil": request.valid_until,
    }


def line_body(line: BillLine) -> dict[str, Any]:
    """One bill line as the region reads it."""
    return {
        "itemCode": line.item_code,
        "itemName": line.item_name,
        "catalogueClass": line.catalogue_class.value,
        "quantity": line.quantity,
        "unitPriceFen": line.unit_price_fen,
        "amountFen": line.amount_fen,
        "priceCapFen": line.price_cap_fen,
    }


def bill_body(bill: Bill) -> dict[str, Any]:
    """The body of ``POST /v2/settlement-previews`` and ``POST /v2/settlements``."""
    return {
        "requestId": bill.request_id,
        **person_body(bill.credential),
        "insuredArea": bill.insured_area,
        "treatmentArea": bill.treatment_area,
        "institutionId": bill.institution_id,
        "hospitalLevel": bill.hospital_level,
        "visitType": bill.visit_type.value,
        "laterAdmission": bill.later_admission,
        "usePersonalAccount": bill.use_personal_account,
        "lines": [line_body(line) for line in bill.lines],
    }


def reversal_body(reversal: Reversal) -> dict[str, str]:
    """The body of ``POST /v2/settlements/{msgId}/reversal``; the path names the settlement."""
    return {
        "requestId": reversal.request_id,
        "idNo": reversal.social_security_number,
        "reason": reversal.reason,
    }


def advice_body(advice: StandInAdvice) -> dict[str, str]:
    """The body of ``POST /v2/stand-in-advices``; ``adviceId`` is its message id."""
    return {
        "adviceId": advice.advice_id,
        "cardNo": advice.card_number,
        "issuingArea": advice.issuing_area,
        "serviceKind": advice.service_kind.value,
        "venueArea": advice.venue_area,
        "grantedAt": advice.granted_at,
        "statusConfirmedAt": advice.status_confirmed_at,
    }


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


def filing(data: Any) -> Filing:
    """The reply of ``POST /v2/filings``."""
    return Filing(
        filing_id=field(data, "filingId", str),
        treatment_area=field(data, "treatmentArea", str),
        filing_type=coded(data, "filingType", FILING_TYPES),
        valid_from=field(data, "validFrom", str),
        valid_until=field(data, "validUntil", str),
    )


def split(obj: Any) -> Split:
    """A split from its wire form, every part in integer fen (the hub checks that it balances)."""
    return Split(
        total_fen=field(obj, "totalFen", int),
        full_self_pay_fen=field(obj, "fullSelfPayFen", int),
        over_cap_fen=field(obj, "overCapFen", int),
        b_class_self_pay_fen=field(obj, "bClassSelfPayFen", int),
        in_scope_fen=field(obj, "inScopeFen", int),
        deductible_fen=field(obj, "deductibleFen", int),
        fund_pay_fen=field(obj, "fundPayFen", int),
        account_pay_fen=field(obj, "accountPayFen", int),
        cash_pay_fen=field(obj, "cashPayFen", int),
    )


def preview(data: Any) -> Split:
    """The reply of ``POST /v2/settlement-previews``."""
    return split(field(data, "split", dict))


def settlement(data: Any) -> RegionSettlement:
    """A settlement as the region booked it: the reply of ``POST /v2/settlements``."""
    return RegionSettlement(
        request_id=field(data, "requestId", str),
        region_settlement_id=field(data, "settlementId", str),
        split=split(field(data, "split", dict)),
    )


def outcome(data: Any) -> SettlementOutcome:
    """The reply of ``GET /v2/settlements/{msgId}``; ``settlement`` is null for an id voided unseen."""
    booked = data.get("settlement") if isinstance(data, dict) else None
    return SettlementOutcome(
        state=coded(data, "state", SETTLEMENT_STATES),
        settlement=settlement(booked) if booked is not None else None,
    )


def advice_recorded(data: Any, advice_id: str) -> None:
    """The reply of ``POST /v2/stand-in-advices``: the advice recorded, which must be ``advice_id``'s."""
    recorded = field(data, "adviceId", str)
    if recorded != advice_id:
        raise MalformedReply(f"the region recorded advice {recorded!r}, not {advice_id!r}")


def nothing(_: Any) -> None:
    """For replies whose data the adapter does not need."""
