"""The 川渝 wire's JSON form of each domain object, both ways: the one place its camelCase field names are written.

Each shape has its writer (``*_json``, domain → JSON) and its reader (JSON → domain, from
:class:`~adapters.jsonwire.Fields`) side by side. The adapter writes requests and reads replies; the region's
server reads requests and writes replies; both use these.

The two kinds of reader differ on purpose. A request reader (:func:`bill`, :func:`filing_request`, …) is the
region's check of what the adapter sent: every field required, shaped and in range, or a
:class:`~adapters.jsonwire.FieldError` naming it, which the server answers ``400``/``4000``. A reply reader
(:func:`card_record`, :func:`settlement`, …) takes the region's values as they come and only insists on their
types and codes; the client turns its ``FieldError`` into ``RegionProtocolError``.
"""

from __future__ import annotations

from typing import Any

from adapters.domain import (
    Application,
    ApplyCard,
    Bill,
    BillLine,
    Card,
    CardAction,
    CardCredential,
    CardRecord,
    CatalogueClass,
    ChangeCard,
    Delivery,
    FileRemoteCare,
    Filing,
    FilingType,
    Holder,
    Insurance,
    InsuranceType,
    RegionSettlement,
    ReplaceCard,
    ReplaceReason,
    Reversal,
    ServiceKind,
    SettlementOutcome,
    Split,
    Stage,
    StageEvent,
    StandInAdvice,
    VisitType,
)
from adapters.jsonwire import Fields
from adapters.sichuan_chongqing.protocol import (
    GENDER_CODES,
    GENDERS,
    SETTLEMENT_STATE_CODES,
    SETTLEMENT_STATES,
    STATUS_CODES,
    STATUSES,
)

SPLIT_FIELDS: dict[str, str] = {
    "total_fen": "totalFen",
    "full_self_pay_fen": "fullSelfPayFen",
    "over_cap_fen": "overCapFen",
    "b_class_self_pay_fen": "bClassSelfPayFen",
    "in_scope_fen": "inScopeFen",
    "deductible_fen": "deductibleFen",
    "fund_pay_fen": "fundPayFen",
    "account_pay_fen": "accountPayFen",
    "cash_pay_fen": "cashPayFen",
}
"""Each part of a :class:`~adapters.domain.Split` and its field, an integer number of fen."""


# --- the card system ---------------------------------------------------------------------------------------


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


def card(obj: Fields) -> Card:
    """A card from its wire form."""
    return Card(
        card_number=obj.value("cardNo", str),
        card_identification_code=obj.value("cardSn", str),
        issuing_area=obj.value("issuingArea", str),
        status=obj.coded("status", STATUSES),
        generation=obj.value("generation", int),
        valid_until=obj.value("validUntil", str),
    )


def holder_json(holder: Holder) -> dict[str, Any]:
    """A cardholder, the ``person`` of a card record."""
    return {
        "idNo": holder.social_security_number,
        "name": holder.name,
        "gender": GENDER_CODES[holder.gender],
        "birthDate": holder.birth_date,
    }


def holder(obj: Fields) -> Holder:
    """A cardholder from the wire's ``person``."""
    return Holder(
        social_security_number=obj.value("idNo", str),
        name=obj.value("name", str),
        gender=obj.coded("gender", GENDERS),
        birth_date=obj.value("birthDate", str),
    )


def insurance_json(insurance: Insurance) -> dict[str, Any]:
    """One insurance of a cardholder."""
    return {"insuranceType": insurance.insurance_type.value, "insuredArea": insurance.insured_area}


def insurance(obj: Fields) -> Insurance:
    """One insurance from its wire form."""
    return Insurance(obj.value("insuredArea", str), obj.choice("insuranceType", InsuranceType))


def record_json(record: CardRecord) -> dict[str, Any]:
    """The reply of ``GET /v2/cards/{cardNo}``: the card, its holder and the holder's insurances."""
    return {
        "card": card_json(record.card),
        "person": holder_json(record.holder),
        "insurances": [insurance_json(i) for i in record.insurances],
    }


def card_record(data: Fields) -> CardRecord:
    """The reply of ``GET /v2/cards/{cardNo}``."""
    return CardRecord(
        holder=holder(data.nested("person")),
        card=card(data.nested("card")),
        insurances=tuple(insurance(i) for i in data.objects("insurances", allow_empty=True)),
    )


def application_json(application: Application) -> dict[str, Any]:
    """A card application with its stage history (and its card once issued)."""
    return {
        "applicationId": application.application_id,
        "stage": application.stage.value,
        "history": [{"stage": e.stage.value, "at": e.at} for e in application.history],
        "failureReason": application.failure_reason,
        "card": card_json(application.card) if application.card else None,
    }


def application(data: Fields) -> Application:
    """An application from its wire form, with its card once issued."""
    issued = data.nested_or_none("card")
    return Application(
        application_id=data.value("applicationId", str),
        stage=data.choice("stage", Stage),
        history=tuple(
            StageEvent(e.choice("stage", Stage), e.value("at", str)) for e in data.objects("history", allow_empty=True)
        ),
        failure_reason=data.value("failureReason", str),
        card=card(issued) if issued is not None else None,
    )


def apply_json(request: ApplyCard) -> dict[str, Any]:
    """The body of ``POST /v2/applications``."""
    return {
        "requestId": request.request_id,
        "idNo": request.social_security_number,
        "name": request.holder_name,
        "insuredArea": request.insured_area,
        "delivery": request.delivery.value,
    }


def apply(fields: Fields) -> ApplyCard:
    """The body of ``POST /v2/applications``, checked."""
    return ApplyCard(
        request_id=fields.text("requestId"),
        social_security_number=fields.text("idNo"),
        holder_name=fields.text("name"),
        insured_area=fields.area("insuredArea"),
        delivery=fields.choice("delivery", Delivery),
    )


def _card_write_json(request_id: str, credential: CardCredential) -> dict[str, str]:
    """What a write on ``/v2/cards/{cardNo}/…`` names besides the path's card number."""
    return {
        "requestId": request_id,
        "idNo": credential.social_security_number,
        "name": credential.holder_name,
        "cardSn": credential.card_identification_code,
    }


def _card_write(fields: Fields, card_number: str) -> tuple[str, CardCredential]:
    """The request id and card holder of a card write, checked; the card number is the path's."""
    request_id, ssn = fields.text("requestId"), fields.text("idNo")
    code, name = fields.text("cardSn"), fields.text("name")
    return request_id, CardCredential(ssn, card_number, code, "", name)


def change_json(request: ChangeCard) -> dict[str, str]:
    """The body of ``POST /v2/cards/{cardNo}/status-changes``."""
    return {**_card_write_json(request.request_id, request.credential), "action": request.action.value}


def change(fields: Fields, card_number: str) -> ChangeCard:
    """The body of ``POST /v2/cards/{cardNo}/status-changes``, checked."""
    request_id, credential = _card_write(fields, card_number)
    return ChangeCard(request_id, credential, fields.choice("action", CardAction))


def replacement_json(request: ReplaceCard) -> dict[str, str]:
    """The body of ``POST /v2/cards/{cardNo}/replacements``."""
    return {**_card_write_json(request.request_id, request.credential), "reason": request.reason.value}


def replacement(fields: Fields, card_number: str) -> ReplaceCard:
    """The body of ``POST /v2/cards/{cardNo}/replacements``, checked."""
    request_id, credential = _card_write(fields, card_number)
    return ReplaceCard(request_id, credential, fields.choice("reason", ReplaceReason))


# --- the medical system ------------------------------------------------------------------------------------


def credential_json(credential: CardCredential) -> dict[str, str]:
    """The insured person of a medical request, with the card they presented."""
    return {
        "idNo": credential.social_security_number,
        "name": credential.holder_name,
        "cardNo": credential.card_number,
        "cardSn": credential.card_identification_code,
        "issuingArea": credential.issuing_area,
    }


def credential(fields: Fields) -> CardCredential:
    """The insured person (``idNo``, ``name``) and, for the record, the card they presented."""
    return CardCredential(
        social_security_number=fields.text("idNo"),
        card_number=fields.optional("cardNo"),
        card_identification_code=fields.optional("cardSn"),
        issuing_area=fields.optional("issuingArea"),
        holder_name=fields.optional("name"),
    )


def filing_request_json(request: FileRemoteCare) -> dict[str, Any]:
    """The body of ``POST /v2/filings``."""
    return {
        "requestId": request.request_id,
        **credential_json(request.credential),
        "treatmentArea": request.treatment_area,
        "filingType": request.filing_type.value,
        "validFrom": request.valid_from,
        "validUntil": request.valid_until,
    }


def filing_request(fields: Fields) -> FileRemoteCare:
    """The body of ``POST /v2/filings``, checked."""
    valid_from, valid_until = fields.date("validFrom"), fields.date("validUntil")
    if valid_until < valid_from:
        raise fields.error("validUntil", "must not be before validFrom")
    return FileRemoteCare(
        request_id=fields.text("requestId"),
        credential=credential(fields),
        treatment_area=fields.area("treatmentArea"),
        filing_type=fields.choice("filingType", FilingType),
        valid_from=valid_from,
        valid_until=valid_until,
    )


def filing_json(filing: Filing) -> dict[str, Any]:
    """The reply of ``POST /v2/filings``: the filing (备案) as the region recorded it."""
    return {
        "filingId": filing.filing_id,
        "treatmentArea": filing.treatment_area,
        "filingType": filing.filing_type.value,
        "validFrom": filing.valid_from,
        "validUntil": filing.valid_until,
    }


def filing(data: Fields) -> Filing:
    """The reply of ``POST /v2/filings``."""
    return Filing(
        filing_id=data.value("filingId", str),
        treatment_area=data.value("treatmentArea", str),
        filing_type=data.choice("filingType", FilingType),
        valid_from=data.value("validFrom", str),
        valid_until=data.value("validUntil", str),
    )


def line_json(line: BillLine) -> dict[str, Any]:
    """One bill line; ``priceCapFen`` 0 means no price cap."""
    return {
        "itemCode": line.item_code,
        "itemName": line.item_name,
        "catalogueClass": line.catalogue_class.value,
        "quantity": line.quantity,
        "unitPriceFen": line.unit_price_fen,
        "amountFen": line.amount_fen,
        "priceCapFen": line.price_cap_fen,
    }


def line(item: Fields) -> BillLine:
    """One element of a bill's ``lines``, checked."""
    return BillLine(
        item_code=item.text("itemCode"),
        item_name=item.text("itemName"),
        catalogue_class=item.choice("catalogueClass", CatalogueClass),
        quantity=item.integer("quantity", low=1),
        unit_price_fen=item.integer("unitPriceFen"),
        amount_fen=item.integer("amountFen"),
        price_cap_fen=item.integer("priceCapFen"),
    )


def bill_json(bill: Bill) -> dict[str, Any]:
    """The body of ``POST /v2/settlement-previews`` and ``POST /v2/settlements``."""
    return {
        "requestId": bill.request_id,
        **credential_json(bill.credential),
        "insuredArea": bill.insured_area,
        "treatmentArea": bill.treatment_area,
        "institutionId": bill.institution_id,
        "hospitalLevel": bill.hospital_level,
        "visitType": bill.visit_type.value,
        "laterAdmission": bill.later_admission,
        "usePersonalAccount": bill.use_personal_account,
        "lines": [line_json(line) for line in bill.lines],
    }


def bill(fields: Fields, request_id: str) -> Bill:
    """The body of ``POST /v2/settlement-previews`` and ``POST /v2/settlements``, checked."""
    items = fields.objects("lines")
    return Bill(
        request_id=request_id,
        credential=credential(fields),
        insured_area=fields.area("insuredArea"),
        treatment_area=fields.area("treatmentArea"),
        institution_id=fields.text("institutionId"),
        hospital_level=fields.integer("hospitalLevel", low=1, high=3),
        visit_type=fields.choice("visitType", VisitType),
        later_admission=fields.boolean("laterAdmission"),
        lines=tuple(line(item) for item in items),
        use_personal_account=fields.boolean("usePersonalAccount"),
    )


def split_json(split: Split) -> dict[str, int]:
    """How a bill is paid, every part in integer fen."""
    return {wire: getattr(split, part) for part, wire in SPLIT_FIELDS.items()}


def split(obj: Fields) -> Split:
    """A split from its wire form (the hub checks that it balances)."""
    return Split(**{part: obj.value(wire, int) for part, wire in SPLIT_FIELDS.items()})


def preview(data: Fields) -> Split:
    """The reply of ``POST /v2/settlement-previews``."""
    return split(data.nested("split"))


def settlement_json(settlement: RegionSettlement) -> dict[str, Any]:
    """A settlement as the region booked it, under the caller's message id: the reply of ``POST /v2/settlements``."""
    return {
        "requestId": settlement.request_id,
        "settlementId": settlement.region_settlement_id,
        "split": split_json(settlement.split),
    }


def settlement(data: Fields) -> RegionSettlement:
    """The reply of ``POST /v2/settlements``."""
    return RegionSettlement(
        request_id=data.value("requestId", str),
        region_settlement_id=data.value("settlementId", str),
        split=split(data.nested("split")),
    )


def outcome_json(request_id: str, outcome: SettlementOutcome) -> dict[str, Any]:
    """What the region knows of a settlement message id it has seen (never ``NOT_FOUND``: that is a 404)."""
    return {
        "requestId": request_id,
        "state": SETTLEMENT_STATE_CODES[outcome.state],
        "settlement": settlement_json(outcome.settlement) if outcome.settlement else None,
    }


def outcome(data: Fields) -> SettlementOutcome:
    """The reply of ``GET /v2/settlements/{msgId}``; ``settlement`` is null for an id voided unseen."""
    booked = data.nested_or_none("settlement")
    return SettlementOutcome(
        state=data.coded("state", SETTLEMENT_STATES),
        settlement=settlement(booked) if booked is not None else None,
    )


def reversal_json(reversal: Reversal) -> dict[str, str]:
    """The body of ``POST /v2/settlements/{msgId}/reversal``; the path names the settlement."""
    return {"requestId": reversal.request_id, "idNo": reversal.social_security_number, "reason": reversal.reason}


def reversal(fields: Fields, settlement_request_id: str) -> Reversal:
    """The body of ``POST /v2/settlements/{msgId}/reversal``, checked; the path's msgId names the settlement."""
    return Reversal(
        request_id=fields.text("requestId"),
        settlement_request_id=settlement_request_id,
        social_security_number=fields.text("idNo"),
        reason=fields.optional("reason"),
    )


# --- resident services -------------------------------------------------------------------------------------


def advice_json(advice: StandInAdvice) -> dict[str, str]:
    """A stand-in advice: the body of ``POST /v2/stand-in-advices`` and its reply; ``adviceId`` is its message id."""
    return {
        "adviceId": advice.advice_id,
        "cardNo": advice.card_number,
        "issuingArea": advice.issuing_area,
        "serviceKind": advice.service_kind.value,
        "venueArea": advice.venue_area,
        "grantedAt": advice.granted_at,
        "statusConfirmedAt": advice.status_confirmed_at,
    }


def advice(fields: Fields) -> StandInAdvice:
    """The body of ``POST /v2/stand-in-advices``, checked."""
    return StandInAdvice(
        advice_id=fields.message_id("adviceId"),
        card_number=fields.card_number("cardNo"),
        issuing_area=fields.area("issuingArea"),
        service_kind=fields.choice("serviceKind", ServiceKind),
        venue_area=fields.area("venueArea"),
        granted_at=fields.moment("grantedAt"),
        status_confirmed_at=fields.moment("statusConfirmedAt"),
    )


def advice_recorded(data: Fields, advice_id: str) -> None:
    """The reply of ``POST /v2/stand-in-advices``: the advice recorded, which must be ``advice_id``'s."""
    recorded = data.value("adviceId", str)
    if recorded != advice_id:
        raise data.error("adviceId", f"names advice {recorded!r}, not {advice_id!r}")


def nothing(_: Fields) -> None:
    """For replies whose data the adapter does not need."""
