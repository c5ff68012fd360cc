"""The 粤桂琼 wire's JSON form of each domain object, both ways: the one place its field names are written.

Each shape has its writer (``*_json``, domain → JSON) and its reader (JSON → domain, from the hub SDK's
:class:`~adapters.jsonwire.Fields`) side by side. The adapter writes params and reads results; the sandbox reads
params and writes results; both use these, with the code tables of :mod:`yikatong_ggh.dialect`. Dates travel as
``YYYYMMDD``, money as integer fen.

The two kinds of reader differ on purpose. A params reader (:func:`bill`, :func:`filing_request`, …) is the
region's check of what the adapter sent: every field required, shaped and in range, or a
:class:`~adapters.jsonwire.FieldError` naming its path (``items[2].amount``), which the sandbox answers ``-32602``.
A result reader (:func:`card_record`, :func:`settlement`, …) takes the region's values as they come and insists
only on their types and codes; the client turns its ``FieldError`` into ``RegionProtocolError``.

The JSON-RPC 2.0 objects around them are the adapter's client's (:mod:`yikatong_ggh.client`) and the sandbox's
(:mod:`yikatong_ggh.sandbox`) to write and read.
"""

from __future__ import annotations

from typing import Any

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
from adapters.jsonwire import Fields
from yikatong_ggh import dialect
from yikatong_ggh.dialect import code_of, compact_date

COMPACT = "YYYYMMDD"
SPLIT_FIELDS: dict[str, str] = {
    "total_fen": "total",
    "full_self_pay_fen": "self_full",
    "over_cap_fen": "over_cap",
    "b_class_self_pay_fen": "self_b",
    "in_scope_fen": "in_scope",
    "deductible_fen": "deductible",
    "fund_pay_fen": "fund",
    "account_pay_fen": "account",
    "cash_pay_fen": "cash",
}
"""Each part of a :class:`~adapters.domain.Split` and its field, an integer number of fen."""


# --- the card system -----------------------------------------------------------------------------------------------


def person_json(credential: CardCredential) -> dict[str, str]:
    """The ``person`` block: who presented which card."""
    return {
        "ssn": credential.social_security_number,
        "name": credential.holder_name,
        "card_no": credential.card_number,
        "chip_code": credential.card_identification_code,
        "issuing_area": credential.issuing_area,
    }


def person(params: Fields) -> CardCredential:
    """The ``person`` block, checked: the SSN, and the name (checked when given) and card for the record."""
    block = params.nested("person")
    return CardCredential(
        social_security_number=block.text("ssn"),
        card_number=block.optional("card_no"),
        card_identification_code=block.optional("chip_code"),
        issuing_area=block.optional("issuing_area"),
        holder_name=block.optional("name"),
    )


def card_query_json(credential: CardCredential) -> dict[str, str]:
    """Params of ``card.get``; the identification code and name are checked when given."""
    return {
        "ssn": credential.social_security_number,
        "card_no": credential.card_number,
        "chip_code": credential.card_identification_code,
        "name": credential.holder_name,
    }


def card_query(params: Fields) -> CardCredential:
    """The params of ``card.get``, checked: SSN and card number required, the code and name checked if given."""
    return CardCredential(
        social_security_number=params.text("ssn"),
        card_number=params.text("card_no"),
        card_identification_code=params.optional("chip_code"),
        issuing_area="",
        holder_name=params.optional("name"),
    )


def card_json(card: Card) -> dict[str, Any]:
    """A card as the region describes it."""
    return {
        "card_no": card.card_number,
        "chip_code": card.card_identification_code,
        "issuing_area": card.issuing_area,
        "status": code_of(dialect.CARD_STATUS, card.status),
        "gen": card.generation,
        "expires": compact_date(card.valid_until),
    }


def card(obj: Fields) -> Card:
    """A card from its wire form."""
    return Card(
        card_number=obj.value("card_no", str),
        card_identification_code=obj.value("chip_code", str),
        issuing_area=obj.value("issuing_area", str),
        status=obj.coded("status", dialect.CARD_STATUS),
        generation=obj.value("gen", int),
        valid_until=obj.date("expires", COMPACT),
    )


def record_json(record: CardRecord) -> dict[str, Any]:
    """The result of ``card.get``: the card, its holder and the holder's insurances."""
    holder = record.holder
    return {
        "card": card_json(record.card),
        "holder": {
            "ssn": holder.social_security_number,
            "name": holder.name,
            "sex": code_of(dialect.GENDER, holder.gender),
            "birth": compact_date(holder.birth_date),
        },
        "insurances": [
            {"area": i.insured_area, "type": code_of(dialect.INSURANCE_TYPE, i.insurance_type)}
            for i in record.insurances
        ],
    }


def card_record(result: Fields) -> CardRecord:
    """The result of ``card.get``."""
    holder = result.nested("holder")
    return CardRecord(
        holder=Holder(
            social_security_number=holder.value("ssn", str),
            name=holder.value("name", str),
            gender=holder.coded("sex", dialect.GENDER),
            birth_date=holder.date("birth", COMPACT),
        ),
        card=card(result.nested("card")),
        insurances=tuple(
            Insurance(i.value("area", str), i.coded("type", dialect.INSURANCE_TYPE))
            for i in result.objects("insurances", allow_empty=True)
        ),
    )


def exists(result: Fields) -> bool:
    """The result of ``person.exists``."""
    return result.value("exists", bool)


def apply_json(request: ApplyCard) -> dict[str, str]:
    """Params of ``card.apply``."""
    return {
        "ssn": request.social_security_number,
        "name": request.holder_name,
        "insured_area": request.insured_area,
        "delivery": code_of(dialect.DELIVERY, request.delivery),
    }


def apply(params: Fields, message_id: str) -> ApplyCard:
    """The params of ``card.apply``, checked."""
    return ApplyCard(
        request_id=message_id,
        social_security_number=params.text("ssn"),
        holder_name=params.text("name"),
        insured_area=params.area("insured_area"),
        delivery=params.coded("delivery", dialect.DELIVERY),
    )


def _card_holder(params: Fields) -> CardCredential:
    """A card write's ``person``, checked: SSN, card number and name required, identification code if given."""
    block = params.nested("person")
    return CardCredential(
        social_security_number=block.text("ssn"),
        card_number=block.text("card_no"),
        card_identification_code=block.optional("chip_code"),
        issuing_area="",
        holder_name=block.text("name"),
    )


def change_json(request: ChangeCard) -> dict[str, Any]:
    """Params of ``card.change``."""
    return {"person": person_json(request.credential), "op": code_of(dialect.CARD_OP, request.action)}


def change(params: Fields, message_id: str) -> ChangeCard:
    """The params of ``card.change``, checked."""
    return ChangeCard(message_id, _card_holder(params), params.coded("op", dialect.CARD_OP))


def replace_json(request: ReplaceCard) -> dict[str, Any]:
    """Params of ``card.replace``."""
    return {"person": person_json(request.credential), "reason": code_of(dialect.REPLACE_REASON, request.reason)}


def replacement(params: Fields, message_id: str) -> ReplaceCard:
    """The params of ``card.replace``, checked."""
    return ReplaceCard(message_id, _card_holder(params), params.coded("reason", dialect.REPLACE_REASON))


def application_json(application: Application) -> dict[str, Any]:
    """A card application with its stage history, and its card once issued."""
    return {
        "app_no": application.application_id,
        "stage": code_of(dialect.STAGE, application.stage),
        "history": [{"stage": code_of(dialect.STAGE, e.stage), "at": e.at} for e in application.history],
        "fail_reason": application.failure_reason,
        "card": card_json(application.card) if application.card else None,
    }


def application(result: Fields) -> Application:
    """An application from its wire form, with its card once issued."""
    issued = result.nested_or_none("card")
    return Application(
        application_id=result.value("app_no", str),
        stage=result.coded("stage", dialect.STAGE),
        history=tuple(
            StageEvent(e.coded("stage", dialect.STAGE), e.value("at", str))
            for e in result.objects("history", allow_empty=True)
        ),
        failure_reason=result.value("fail_reason", str),
        card=card(issued) if issued is not None else None,
    )


# --- the medical-insurance system ----------------------------------------------------------------------------------


def filing_request_json(request: FileRemoteCare) -> dict[str, Any]:
    """Params of ``care.file``."""
    return {
        "person": person_json(request.credential),
        "treatment_area": request.treatment_area,
        "type": code_of(dialect.FILING_TYPE, request.filing_type),
        "from": compact_date(request.valid_from),
        "until": compact_date(request.valid_until),
    }


def filing_request(params: Fields, message_id: str) -> FileRemoteCare:
    """The params of ``care.file``, checked."""
    valid_from, valid_until = params.date("from", COMPACT), params.date("until", COMPACT)
    if valid_until < valid_from:
        raise params.error("until", "must not be before from")
    return FileRemoteCare(
        request_id=message_id,
        credential=person(params),
        treatment_area=params.area("treatment_area"),
        filing_type=params.coded("type", dialect.FILING_TYPE),
        valid_from=valid_from,
        valid_until=valid_until,
    )


def filing_json(filing: Filing) -> dict[str, Any]:
    """The result of ``care.file``: the filing (备案) as the region recorded it."""
    return {
        "filing_no": filing.filing_id,
        "treatment_area": filing.treatment_area,
        "type": code_of(dialect.FILING_TYPE, filing.filing_type),
        "from": compact_date(filing.valid_from),
        "until": compact_date(filing.valid_until),
    }


def filing(result: Fields) -> Filing:
    """The result of ``care.file``."""
    return Filing(
        filing_id=result.value("filing_no", str),
        treatment_area=result.value("treatment_area", str),
        filing_type=result.coded("type", dialect.FILING_TYPE),
        valid_from=result.date("from", COMPACT),
        valid_until=result.date("until", COMPACT),
    )


def item_json(line: BillLine) -> dict[str, Any]:
    """One bill line; ``cap`` 0 means no price cap."""
    return {
        "code": line.item_code,
        "name": line.item_name,
        "class": code_of(dialect.CATALOGUE_CLASS, line.catalogue_class),
        "qty": line.quantity,
        "price": line.unit_price_fen,
        "amount": line.amount_fen,
        "cap": line.price_cap_fen,
    }


def item(obj: Fields) -> BillLine:
    """One element of a bill's ``items``, checked."""
    return BillLine(
        item_code=obj.text("code"),
        item_name=obj.text("name"),
        catalogue_class=obj.coded("class", dialect.CATALOGUE_CLASS),
        quantity=obj.integer("qty", low=1),
        unit_price_fen=obj.integer("price"),
        amount_fen=obj.integer("amount"),
        price_cap_fen=obj.integer("cap"),
    )


def bill_json(bill: Bill) -> dict[str, Any]:
    """Params of ``bill.preview`` and ``bill.settle`` (whose message id travels in the header)."""
    return {
        "person": person_json(bill.credential),
        "insured_area": bill.insured_area,
        "treatment_area": bill.treatment_area,
        "institution": bill.institution_id,
        "level": bill.hospital_level,
        "visit": code_of(dialect.VISIT_TYPE, bill.visit_type),
        "readmission": bill.later_admission,
        "use_account": bill.use_personal_account,
        "items": [item_json(line) for line in bill.lines],
    }


def bill(params: Fields, message_id: str) -> Bill:
    """The params of ``bill.preview`` and ``bill.settle``, checked."""
    return Bill(
        request_id=message_id,
        credential=person(params),
        insured_area=params.area("insured_area"),
        treatment_area=params.area("treatment_area"),
        institution_id=params.text("institution"),
        hospital_level=params.integer("level", low=1, high=3),
        visit_type=params.coded("visit", dialect.VISIT_TYPE),
        later_admission=params.boolean("readmission"),
        lines=tuple(item(obj) for obj in params.objects("items")),
        use_personal_account=params.boolean("use_account"),
    )


def split_json(split: Split) -> dict[str, int]:
    """How a bill is paid, every part in integer fen."""
    return {wire: getattr(split, part) for part, wire in SPLIT_FIELDS.items()}


def split(obj: Fields) -> Split:
    """A split from its wire form (the hub checks that it balances)."""
    return Split(**{part: obj.value(wire, int) for part, wire in SPLIT_FIELDS.items()})


def preview(result: Fields) -> Split:
    """The result of ``bill.preview``."""
    return split(result.nested("split"))


def settlement_json(settlement: RegionSettlement) -> dict[str, Any]:
    """A settlement as the region booked it, under the caller's message id: the result of ``bill.settle``."""
    return {
        "msg_id": settlement.request_id,
        "settlement_no": settlement.region_settlement_id,
        "split": split_json(settlement.split),
    }


def settlement(result: Fields) -> RegionSettlement:
    """The result of ``bill.settle``."""
    return RegionSettlement(
        request_id=result.value("msg_id", str),
        region_settlement_id=result.value("settlement_no", str),
        split=split(result.nested("split")),
    )


def outcome_json(message_id: str, outcome: SettlementOutcome) -> dict[str, Any]:
    """What the region knows of a settlement message id (state ``N`` when it never saw it)."""
    return {
        "msg_id": message_id,
        "state": code_of(dialect.SETTLEMENT_STATE, outcome.state),
        "settlement": settlement_json(outcome.settlement) if outcome.settlement else None,
    }


def outcome(result: Fields) -> SettlementOutcome:
    """The result of ``bill.outcome``, ``bill.correct`` and ``bill.reverse``; ``settlement`` is null when none
    was booked (never seen, or corrected before it arrived)."""
    booked = result.nested_or_none("settlement")
    return SettlementOutcome(
        state=result.coded("state", dialect.SETTLEMENT_STATE),
        settlement=settlement(booked) if booked is not None else None,
    )


def reversal_json(reversal: Reversal) -> dict[str, str]:
    """Params of ``bill.reverse``; the reversal's own id travels in the header."""
    return {"msg_id": reversal.settlement_request_id, "ssn": reversal.social_security_number, "reason": reversal.reason}


def reversal(params: Fields, message_id: str) -> Reversal:
    """The params of ``bill.reverse``, checked; ``message_id`` is the reversal's own."""
    return Reversal(message_id, params.message_id("msg_id"), params.text("ssn"), params.optional("reason"))


# --- resident services ---------------------------------------------------------------------------------------------


def advice_json(advice: StandInAdvice) -> dict[str, str]:
    """Params of ``standin.advise`` (the advice id travels in the header); its result adds ``advice_id``."""
    return {
        "card_no": advice.card_number,
        "issuing_area": advice.issuing_area,
        "service": code_of(dialect.SERVICE_KIND, advice.service_kind),
        "venue_area": advice.venue_area,
        "granted_at": advice.granted_at,
        "confirmed_at": advice.status_confirmed_at,
    }


def advice(params: Fields, message_id: str) -> StandInAdvice:
    """The params of ``standin.advise``, checked; the advice id is the call's message id."""
    return StandInAdvice(
        advice_id=message_id,
        card_number=params.card_number("card_no"),
        issuing_area=params.area("issuing_area"),
        service_kind=params.coded("service", dialect.SERVICE_KIND),
        venue_area=params.area("venue_area"),
        granted_at=params.moment("granted_at"),
        status_confirmed_at=params.moment("confirmed_at"),
    )


def advice_recorded(result: Fields, advice_id: str) -> None:
    """The result of ``standin.advise``: the advice recorded, which must be ``advice_id``'s."""
    recorded = result.value("advice_id", str)
    if recorded != advice_id:
        raise result.error("advice_id", f"names advice {recorded!r}, not {advice_id!r}")


def nothing(_: Fields) -> None:
    """For results the adapter does not need."""
