"""The 粤桂琼 wire as the region's sandbox reads and writes it: params to domain values, domain values to results.

Reading goes through :class:`Params`, which names the offending field (``person.ssn``, ``items[2].amount``) in
every :class:`BadParams` it raises; the server answers those with ``-32602`` and ``data.field``.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from adapters.domain import (
    Application,
    Bill,
    BillLine,
    Card,
    CardCredential,
    CardRecord,
    FileRemoteCare,
    Filing,
    RegionSettlement,
    SettlementOutcome,
    Split,
    StandInAdvice,
)
from adapters.identifiers import InvalidIdentifier, parse_card_number
from yikatong_ggh import dialect

E = TypeVar("E", bound=enum.Enum)

MAX_FEN = 2**63 - 1
"""The largest amount the protocol carries (an int64, as in the hub's API)."""
_AREA = re.compile(r"[0-9]{6}")
_DATE = re.compile(r"[0-9]{8}")
MESSAGE_ID = re.compile(r"[\x20-\x7e]{1,64}")
# RFC 3339 date-time: a full date, a full time with optional fraction, and a mandatory offset.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class BadParams(Exception):
    """Params the protocol cannot read; answered ``-32602`` naming the field.

    Attributes:
        field: the field's path in the params, e.g. ``items[0].amount``.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


class Params:
    """Typed reads from one JSON object of a call's params.

    Args:
        data: the object (anything else is refused on the first read).
        path: where it sits in the params, for error messages (``""`` for the params themselves).
    """

    def __init__(self, data: Any, path: str = "") -> None:
        self.data, self.path = data, path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str) -> Any:
        if not isinstance(self.data, dict):
            raise BadParams(self.path or "params", "must be a JSON object")
        return self.data.get(key)

    def text(self, key: str) -> str:
        """A required, non-empty string."""
        value = self._get(key)
        if not isinstance(value, str) or not value:
            raise BadParams(self._name(key), "must be a non-empty string")
        return value

    def optional(self, key: str) -> str:
        """An optional string; ``""`` when absent."""
        value = self._get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise BadParams(self._name(key), "must be a string")
        return value

    def area(self, key: str) -> str:
        """A required 6-digit area code."""
        value = self.text(key)
        if not _AREA.fullmatch(value):
            raise BadParams(self._name(key), "must be a 6-digit area code")
        return value

    def integer(self, key: str, low: int = 0, high: int = MAX_FEN) -> int:
        """A required whole number (never a boolean or a decimal) from ``low`` to ``high``."""
        value = self._get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise BadParams(self._name(key), f"must be a whole number from {low} to {high}")
        return value

    def boolean(self, key: str) -> bool:
        """A required ``true``/``false``."""
        value = self._get(key)
        if not isinstance(value, bool):
            raise BadParams(self._name(key), "must be true or false")
        return value

    def date(self, key: str) -> str:
        """A required ``YYYYMMDD`` date, returned as ``YYYY-MM-DD``."""
        value = self.text(key)
        try:
            if not _DATE.fullmatch(value):
                raise ValueError(value)
            return dt.date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat()
        except ValueError:
            raise BadParams(self._name(key), "must be a date YYYYMMDD") from None

    def moment(self, key: str) -> str:
        """A required RFC 3339 time with its offset, returned as sent."""
        value = self.text(key)
        try:
            if not _RFC3339.fullmatch(value):
                raise ValueError(value)
            dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:
            raise BadParams(self._name(key), "must be an RFC 3339 time with an offset") from None
        return value

    def coded(self, key: str, table: Mapping[str, E]) -> E:
        """A required code of one of the dialect's tables."""
        value = self.text(key)
        if value not in table:
            raise BadParams(self._name(key), f"must be one of {', '.join(table)}")
        return table[value]

    def card_number(self, key: str) -> str:
        """A required card number: 8 of [0-9A-Z] and its check character."""
        try:
            return parse_card_number(self.text(key))
        except InvalidIdentifier as exc:
            raise BadParams(self._name(key), exc.problem) from None

    def message_id(self, key: str) -> str:
        """A required message id: 1–64 printable ASCII characters."""
        value = self.text(key)
        if not MESSAGE_ID.fullmatch(value):
            raise BadParams(self._name(key), "must be 1 to 64 printable ASCII characters")
        return value

    def nested(self, key: str) -> Params:
        """A required JSON object inside this one."""
        value = self._get(key)
        if not isinstance(value, dict):
            raise BadParams(self._name(key), "must be a JSON object")
        return Params(value, self._name(key))

    def objects(self, key: str) -> list[Params]:
        """A required non-empty list of JSON objects."""
        value = self._get(key)
        if not isinstance(value, list) or not value:
            raise BadParams(self._name(key), "must be a non-empty list")
        return [Params(v, f"{self._name(key)}[{i}]") for i, v in enumerate(value)]


# --- params → domain ----------------------------------------------------------------------------------------


def person(params: Params) -> CardCredential:
    """The ``person`` block: the SSN, and the name (checked when given) and card for the record."""
    block = params.nested("person")
    return CardCredential(
        social_security_number=block.text("ssn"),
        card_number=block.optional("card_no"),
        card_identification_code=block.optional("chip_code"),
        issuing_area=block.optional("issuing_area"),
        holder_name=block.optional("name"),
    )


def filing_request(params: Params, message_id: str) -> FileRemoteCare:
    """The params of ``care.file``."""
    valid_from, valid_until = params.date("from"), params.date("until")
    if valid_until < valid_from:
        raise BadParams("until", "must not be before from")
    return FileRemoteCare(
        request_id=message_id,
        credential=person(params),
        treatment_area=params.area("treatment_area"),
        filing_type=params.coded("type", dialect.FILING_TYPE),
        valid_from=valid_from,
        valid_until=valid_until,
    )


def bill_line(item: Params) -> BillLine:
    """One element of a bill's ``items``."""
    return BillLine(
        item_code=item.text("code"),
        item_name=item.text("name"),
        catalogue_class=item.coded("class", dialect.CATALOGUE_CLASS),
        quantity=item.integer("qty", low=1),
        unit_price_fen=item.integer("price"),
        amount_fen=item.integer("amount"),
        price_cap_fen=item.integer("cap"),
    )


def bill(params: Params, message_id: str) -> Bill:
    """The params of ``bill.preview`` and ``bill.settle``."""
    return Bill(
        request_id=message_id,
        credential=person(params),
        insured_area=params.area("insured_area"),
        treatment_area=params.area("treatment_area"),
        institution_id=params.text("institution"),
        hospital_level=params.integer("level", low=1, high=3),
        visit_type=params.coded("visit", dialect.VISIT_TYPE),
        later_admission=params.boolean("readmission"),
        lines=tuple(bill_line(item) for item in params.objects("items")),
        use_personal_account=params.boolean("use_account"),
    )


def advice(params: Params, message_id: str) -> StandInAdvice:
    """The params of ``standin.advise``; the advice id is the call's message id."""
    return StandInAdvice(
        advice_id=message_id,
        card_number=params.card_number("card_no"),
        issuing_area=params.area("issuing_area"),
        service_kind=params.coded("service", dialect.SERVICE_KIND),
        venue_area=params.area("venue_area"),
        granted_at=params.moment("granted_at"),
        status_confirmed_at=params.moment("confirmed_at"),
    )


# --- domain → results ---------------------------------------------------------------------------------------


def card_json(card: Card) -> dict[str, Any]:
    """A card as the region describes it."""
    return {
        "card_no": card.card_number,
        "chip_code": card.card_identification_code,
        "issuing_area": card.issuing_area,
        "status": dialect.code_of(dialect.CARD_STATUS, card.status),
        "gen": card.generation,
        "expires": dialect.compact_date(card.valid_until),
    }


def record_json(record: CardRecord) -> dict[str, Any]:
    """The result of ``card.get``: the card, its holder and the holder's insurances."""
    holder = record.holder
    return {
        "card": card_json(record.card),
        "holder": {
            "ssn": holder.social_security_number,
            "name": holder.name,
            "sex": dialect.code_of(dialect.GENDER, holder.gender),
            "birth": dialect.compact_date(holder.birth_date),
        },
        "insurances": [
            {"area": i.insured_area, "type": dialect.code_of(dialect.INSURANCE_TYPE, i.insurance_type)}
            for i in record.insurances
        ],
    }


def application_json(application: Application) -> dict[str, Any]:
    """A card application with its stage history, and its card once issued."""
    return {
        "app_no": application.application_id,
        "stage": dialect.code_of(dialect.STAGE, application.stage),
        "history": [{"stage": dialect.code_of(dialect.STAGE, e.stage), "at": e.at} for e in application.history],
        "fail_reason": application.failure_reason,
        "card": card_json(application.card) if application.card else None,
    }


def filing_json(filing: Filing) -> dict[str, Any]:
    """A remote-care filing (备案) as the region recorded it."""
    return {
        "filing_no": filing.filing_id,
        "treatment_area": filing.treatment_area,
        "type": dialect.code_of(dialect.FILING_TYPE, filing.filing_type),
        "from": dialect.compact_date(filing.valid_from),
        "until": dialect.compact_date(filing.valid_until),
    }


def split_json(split: Split) -> dict[str, int]:
    """How a bill is paid, every part in integer fen."""
    return {
        "total": split.total_fen,
        "self_full": split.full_self_pay_fen,
        "over_cap": split.over_cap_fen,
        "self_b": split.b_class_self_pay_fen,
        "in_scope": split.in_scope_fen,
        "deductible": split.deductible_fen,
        "fund": split.fund_pay_fen,
        "account": split.account_pay_fen,
        "cash": split.cash_pay_fen,
    }


def settlement_json(settlement: RegionSettlement) -> dict[str, Any]:
    """A settlement as the region booked it, under the caller's message id."""
    return {
        "msg_id": settlement.request_id,
        "settlement_no": settlement.region_settlement_id,
        "split": split_json(settlement.split),
    }


def outcome_json(message_id: str, outcome: SettlementOutcome) -> dict[str, Any]:
    """What the region knows of a settlement message id (state ``N`` when it never saw it)."""
    return {
        "msg_id": message_id,
        "state": dialect.code_of(dialect.SETTLEMENT_STATE, outcome.state),
        "settlement": settlement_json(outcome.settlement) if outcome.settlement else None,
    }


def advice_json(advice: StandInAdvice) -> dict[str, Any]:
    """A stand-in advice as the region recorded it."""
    return {
        "advice_id": advice.advice_id,
        "card_no": advice.card_number,
        "issuing_area": advice.issuing_area,
        "service": dialect.code_of(dialect.SERVICE_KIND, advice.service_kind),
        "venue_area": advice.venue_area,
        "granted_at": advice.granted_at,
        "confirmed_at": advice.status_confirmed_at,
    }
