"""The 粤桂琼 wire as the adapter writes and reads it: domain dataclasses to JSON-RPC params, results back.

Dates travel as ``YYYYMMDD``, money as integer fen, statuses and types as the codes of
:mod:`yikatong_ggh.dialect`. Every reader raises :class:`MalformedReply` (a ``ValueError``) when a result is not
shaped as the protocol says; the client turns that into ``RegionProtocolError`` at its one choke point.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from adapters.domain import (
    Application,
    ApplyCard,
    Bill,
    BillLine,
    Card,
    CardCredential,
    CardRecord,
    ChangeCard,
    FileRemoteCare,
    Filing,
    Holder,
    Insurance,
    RegionSettlement,
    ReplaceCard,
    Reversal,
    SettlementOutcome,
    Split,
    StageEvent,
    StandInAdvice,
)
from yikatong_ggh import dialect

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)


class MalformedReply(ValueError):
    """The region's answer does not follow the protocol."""


class RpcError(Exception):
    """A well-formed JSON-RPC error object the region answered with.

    Attributes:
        http_status: the HTTP status it came with (200, or 401, 500, 503).
        code: the JSON-RPC error code (see :class:`yikatong_ggh.dialect.Code`).
        message: the region's message.
        data: the error's ``data`` (details of some refusals), or ``None``.
    """

    def __init__(self, http_status: int, code: int, message: str, data: Any) -> None:
        super().__init__(f"HTTP {http_status}, JSON-RPC error {code}: {message}")
        self.http_status, self.code, self.message, self.data = http_status, code, message, data


def request(call_id: int, method: dialect.Method, params: Mapping[str, Any]) -> bytes:
    """One JSON-RPC request object, as sent."""
    body = {"jsonrpc": dialect.JSONRPC, "id": call_id, "method": method.value, "params": dict(params)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def response(http_status: int, payload: bytes, call_id: int) -> Any:
    """The ``result`` of the answer to call ``call_id``.

    Raises:
        RpcError: the answer is a JSON-RPC error object (or an HTTP 503 without one).
        MalformedReply: the answer is not a JSON-RPC 2.0 response to this call.
    """
    try:
        parsed: Any = json.loads(payload)
    except ValueError:
        if http_status == 503:  # a proxy in front of the region may answer for it
            raise RpcError(503, dialect.Code.SYSTEM_DOWN, "HTTP 503 without a JSON-RPC body", None) from None
        raise MalformedReply(f"HTTP {http_status} answer is not JSON: {payload[:80]!r}") from None
    if field(parsed, "jsonrpc", str) != dialect.JSONRPC:
        raise MalformedReply(f"jsonrpc must be {dialect.JSONRPC!r}")
    answered = parsed.get("id")
    if "error" in parsed:
        error = field(parsed, "error", dict)
        if answered not in (call_id, None):  # null: the region failed the call before reading it
            raise MalformedReply(f"error answers call {answered!r}, not {call_id}")
        raise RpcError(http_status, field(error, "code", int), field(error, "message", str), error.get("data"))
    if answered != call_id or isinstance(answered, bool):
        raise MalformedReply(f"result answers call {answered!r}, not {call_id}")
    if http_status != 200 or "result" not in parsed:
        raise MalformedReply(f"HTTP {http_status} answer without an error carries no result")
    return parsed["result"]


# --- domain → params ----------------------------------------------------------------------------------------


def person(credential: CardCredential) -> dict[str, str]:
    """The ``person`` block: who presented which card."""
    return {
        "ssn": credential.social_security_number,
        "name": credential.holder_name,
        "card_no": credential.card_number,
        "chip_code": credential.card_identification_code,
        "issuing_area": credential.issuing_area,
    }


def card_query(credential: CardCredential) -> dict[str, str]:
    """Params of ``card.get``; the identification code and name are checked when given."""
    return {
        "ssn": credential.social_security_number,
        "card_no": credential.card_number,
        "chip_code": credential.card_identification_code,
        "name": credential.holder_name,
    }


def apply_params(request: ApplyCard) -> dict[str, str]:
    """Params of ``card.apply``."""
    return {
        "ssn": request.social_security_number,
        "name": request.holder_name,
        "insured_area": request.insured_area,
        "delivery": dialect.code_of(dialect.DELIVERY, request.delivery),
    }


def change_params(request: ChangeCard) -> dict[str, Any]:
    """Params of ``card.change``."""
    return {"person": person(request.credential), "op": dialect.code_of(dialect.CARD_OP, request.action)}


def replace_params(request: ReplaceCard) -> dict[str, Any]:
    """Params of ``card.replace``."""
    return {"person": person(request.credential), "reason": dialect.code_of(dialect.REPLACE_REASON, request.reason)}


def filing_params(request: FileRemoteCare) -> dict[str, Any]:
    """Params of ``care.file``."""
    return {
        "person": person(request.credential),
        "treatment_area": request.treatment_area,
        "type": dialect.code_of(dialect.FILING_TYPE, request.filing_type),
        "from": dialect.compact_date(request.valid_from),
        "until": dialect.compact_date(request.valid_until),
    }


def item(line: BillLine) -> dict[str, Any]:
    """One bill line; ``cap`` 0 means no price cap."""
    return {
        "code": line.item_code,
        "name": line.item_name,
        "class": dialect.code_of(dialect.CATALOGUE_CLASS, line.catalogue_class),
        "qty": line.quantity,
        "price": line.unit_price_fen,
        "amount": line.amount_fen,
        "cap": line.price_cap_fen,
    }


def bill_params(bill: Bill) -> dict[str, Any]:
    """Params of ``bill.preview`` and ``bill.settle`` (whose message id travels in the header)."""
    return {
        "person": person(bill.credential),
        "insured_area": bill.insured_area,
        "treatment_area": bill.treatment_area,
        "institution": bill.institution_id,
        "level": bill.hospital_level,
        "visit": dialect.code_of(dialect.VISIT_TYPE, bill.visit_type),
        "readmission": bill.later_admission,
        "use_account": bill.use_personal_account,
        "items": [item(line) for line in bill.lines],
    }


def reversal_params(reversal: Reversal) -> dict[str, str]:
    """Params of ``bill.reverse``; the reversal's own id travels in the header."""
    return {"msg_id": reversal.settlement_request_id, "ssn": reversal.social_security_number, "reason": reversal.reason}


def advice_params(advice: StandInAdvice) -> dict[str, str]:
    """Params of ``standin.advise``; the advice id travels in the header."""
    return {
        "card_no": advice.card_number,
        "issuing_area": advice.issuing_area,
        "service": dialect.code_of(dialect.SERVICE_KIND, advice.service_kind),
        "venue_area": advice.venue_area,
        "granted_at": advice.granted_at,
        "confirmed_at": advice.status_confirmed_at,
    }


# --- results → domain ---------------------------------------------------------------------------------------


def field(obj: Any, key: str, kind: type[T]) -> T:
    """``obj[key]``, which must be of type ``kind`` (an ``int`` is never a ``bool``)."""
    if not isinstance(obj, dict):
        raise MalformedReply(f"expected a JSON object holding {key!r}, got {type(obj).__name__}")
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MalformedReply(f"{key} must be {kind.__name__}, got {value!r}")
    return value


def coded(obj: Any, key: str, table: Mapping[str, E]) -> E:
    """``obj[key]``, a code looked up in one of the dialect's tables."""
    code = field(obj, key, str)
    if code not in table:
        raise MalformedReply(f"{key} {code!r} is not a known code")
    return table[code]


def date(obj: Any, key: str) -> str:
    """``obj[key]``, a ``YYYYMMDD`` date, as the domain writes it (``YYYY-MM-DD``)."""
    value = field(obj, key, str)
    try:
        if len(value) != 8 or not value.isdigit():
            raise ValueError(value)
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat()
    except ValueError:
        raise MalformedReply(f"{key} must be a date YYYYMMDD, got {value!r}") from None


def card(obj: Any) -> Card:
    """A card from its wire form."""
    return Card(
        card_number=field(obj, "card_no", str),
        card_identification_code=field(obj, "chip_code", str),
        issuing_area=field(obj, "issuing_area", str),
        status=coded(obj, "status", dialect.CARD_STATUS),
        generation=field(obj, "gen", int),
        valid_until=date(obj, "expires"),
    )


def holder(obj: Any) -> Holder:
    """A cardholder from its wire form."""
    return Holder(
        social_security_number=field(obj, "ssn", str),
        name=field(obj, "name", str),
        gender=coded(obj, "sex", dialect.GENDER),
        birth_date=date(obj, "birth"),
    )


def card_record(result: Any) -> CardRecord:
    """The result of ``card.get``."""
    return CardRecord(
        holder=holder(field(result, "holder", dict)),
        card=card(field(result, "card", dict)),
        insurances=tuple(
            Insurance(field(i, "area", str), coded(i, "type", dialect.INSURANCE_TYPE))
            for i in field(result, "insurances", list)
        ),
    )


def exists(result: Any) -> bool:
    """The result of ``person.exists``."""
    return field(result, "exists", bool)


def application(result: Any) -> Application:
    """An application from its wire form, with its card once issued."""
    issued = result.get("card") if isinstance(result, dict) else None
    return Application(
        application_id=field(result, "app_no", str),
        stage=coded(result, "stage", dialect.STAGE),
        history=tuple(
            StageEvent(coded(e, "stage", dialect.STAGE), field(e, "at", str)) for e in field(result, "history", list)
        ),
        failure_reason=field(result, "fail_reason", str),
        card=card(issued) if issued is not None else None,
    )


def filing(result: Any) -> Filing:
    """The result of ``care.file``."""
    return Filing(
        filing_id=field(result, "filing_no", str),
        treatment_area=field(result, "treatment_area", str),
        filing_type=coded(result, "type", dialect.FILING_TYPE),
        valid_from=date(result, "from"),
        valid_until=date(result, "until"),
    )


def split(obj: Any) -> Split:
    """A split from its wire form, every part in integer fen (the hub checks that it balances)."""
    return Split(
        total_fen=field(obj, "total", int),
        full_self_pay_fen=field(obj, "self_full", int),
        over_cap_fen=field(obj, "over_cap", int),
        b_class_self_pay_fen=field(obj, "self_b", int),
        in_scope_fen=field(obj, "in_scope", int),
        deductible_fen=field(obj, "deductible", int),
        fund_pay_fen=field(obj, "fund", int),
        account_pay_fen=field(obj, "account", int),
        cash_pay_fen=field(obj, "cash", int),
    )


def preview(result: Any) -> Split:
    """The result of ``bill.preview``."""
    return split(field(result, "split", dict))


def settlement(result: Any) -> RegionSettlement:
    """A settlement as the region booked it: the result of ``bill.settle``."""
    return RegionSettlement(
        request_id=field(result, "msg_id", str),
        region_settlement_id=field(result, "settlement_no", str),
        split=split(field(result, "split", dict)),
    )


def outcome(result: Any) -> SettlementOutcome:
    """The result of ``bill.outcome``, ``bill.correct`` and ``bill.reverse``; ``settlement`` is null when none
    was booked (never seen, or corrected before it arrived)."""
    booked = result.get("settlement") if isinstance(result, dict) else None
    return SettlementOutcome(
        state=coded(result, "state", dialect.SETTLEMENT_STATE),
        settlement=settlement(booked) if booked is not None else None,
    )


def advice_recorded(result: Any, advice_id: str) -> None:
    """The result of ``standin.advise``: the advice recorded, which must be ``advice_id``'s."""
    recorded = field(result, "advice_id", str)
    if recorded != advice_id:
        raise MalformedReply(f"the region recorded advice {recorded!r}, not {advice_id!r}")


def nothing(_: Any) -> None:
    """For results the adapter does not need."""
