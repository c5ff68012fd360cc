"""Protobuf ↔ canonical domain, with the validation of DESIGN §4.1 on the way in.

Every ``decode_*`` raises :class:`~adapters.errors.InvalidArgument` naming the request field
(``card.card_number``), before any region is called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from adapters import domain
from adapters.errors import InvalidArgument
from adapters.identifiers import (
    InvalidIdentifier,
    parse_area,
    parse_card_identification_code,
    parse_card_number,
    parse_ssn,
)
from gateway.federation import Federation
from gateway.status import Unsupported
from yikatong.v1 import card_affairs_pb2 as affairs_pb
from yikatong.v1 import common_pb2 as pb
from yikatong.v1 import events_pb2 as events_pb
from yikatong.v1 import resident_pb2 as resident_pb

MAX_NAME = 64


def _checked(field: str, parse: Callable[[str], str], value: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    try:
        return parse(value)
    except InvalidIdentifier as exc:
        raise InvalidArgument(field, exc.problem) from None


def decode_ssn(value: str, field: str) -> str:
    return _checked(field, parse_ssn, value)


def decode_area(value: str, field: str) -> str:
    return _checked(field, parse_area, value)


def decode_request_id(value: str, field: str = "request_id") -> str:
    """1–64 printable ASCII characters (DESIGN §6)."""
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > 64 or not all(" " < c <= "~" for c in value):
        raise InvalidArgument(field, "must be 1 to 64 printable ASCII characters")
    return value


def decode_name(value: str, field: str, *, required: bool = True) -> str:
    name = value.strip()
    if not name:
        if required:
            raise InvalidArgument(field, "is required")
        return ""
    if len(name) > MAX_NAME or not name.isprintable():
        raise InvalidArgument(field, f"must be at most {MAX_NAME} printable characters")
    return name


def decode_credential(
    msg: pb.CardCredential, field: str = "card", *, name_required: bool = False
) -> domain.CardCredential:
    """A validated credential whose issuing area is known (from the identification code or stated)."""
    if msg.ecard_token:
        raise Unsupported(
            "e-card tokens are accepted by VerifyCard and AuthorizeService only",
            metadata={"field": f"{field}.ecard_token"},
        )
    ssn = decode_ssn(msg.social_security_number, f"{field}.social_security_number")
    number = _checked(f"{field}.card_number", parse_card_number, msg.card_number)
    code = ""
    if msg.card_identification_code:
        code = _checked(
            f"{field}.card_identification_code", parse_card_identification_code, msg.card_identification_code
        )
    area = decode_area(msg.issuing_area, f"{field}.issuing_area") if msg.issuing_area else code[:6]
    if not area:
        raise InvalidArgument(f"{field}.card_identification_code", "is required when issuing_area is not given")
    if code and area != code[:6]:
        raise InvalidArgument(f"{field}.issuing_area", "does not agree with the card identification code")
    name = decode_name(msg.holder_name, f"{field}.holder_name", required=name_required)
    return domain.CardCredential(ssn, number, code, area, name)


def decode_venue(msg: pb.Venue, field: str = "venue") -> str:
    """The venue's area code (where the card is used)."""
    return decode_area(msg.area_code, f"{field}.area_code")


def decode_service_kind(value: int, field: str = "service_kind") -> domain.ServiceKind:
    if value not in resident_pb.ServiceKind.values() or value == resident_pb.SERVICE_KIND_UNSPECIFIED:
        raise InvalidArgument(field, "must be TRANSIT, LIBRARY, MUSEUM, SCENIC_SPOT or PARK")
    return domain.ServiceKind[resident_pb.ServiceKind.Name(cast(Any, value)).removeprefix("SERVICE_KIND_")]


def decode_status(value: int, field: str) -> domain.CardStatus:
    if value not in pb.CardStatus.values() or value == pb.CARD_STATUS_UNSPECIFIED:
        raise InvalidArgument(field, "must be a card status other than UNSPECIFIED")
    return domain.CardStatus[pb.CardStatus.Name(cast(Any, value)).removeprefix("CARD_STATUS_")]


def decode_card_event(msg: events_pb.CardEvent, federation: Federation) -> domain.CardEvent:
    """A region's card event; the card must be one the publishing region issued."""
    event_id = decode_request_id(msg.event_id, "event.event_id")
    if msg.region not in federation.regions:
        raise InvalidArgument("event.region", "is not a federated region")
    number = _checked("event.card_number", parse_card_number, msg.card_number)
    area = decode_area(msg.issuing_area, "event.issuing_area")
    if federation.region_of_province(area[:2]) != msg.region:
        raise InvalidArgument("event.issuing_area", f"is not served by region {msg.region}")
    ssn = decode_ssn(msg.social_security_number, "event.social_security_number") if msg.social_security_number else ""
    status = decode_status(msg.status, "event.status")
    return domain.CardEvent(event_id, msg.region, number, area, status, ssn)


def decode_delivery(value: int) -> domain.Delivery:
    if value == affairs_pb.DELIVERY_MAIL:
        return domain.Delivery.MAIL
    if value in (affairs_pb.DELIVERY_UNSPECIFIED, affairs_pb.DELIVERY_OUTLET):
        return domain.Delivery.OUTLET
    raise InvalidArgument("delivery", f"{value} is not a delivery method")


def decode_replace_reason(value: int) -> domain.ReplaceReason:
    name = affairs_pb.ReplaceReason.Name(cast(Any, value)) if value in affairs_pb.ReplaceReason.values() else ""
    if not name or value == affairs_pb.REPLACE_REASON_UNSPECIFIED:
        raise InvalidArgument("reason", "must be LOST, DAMAGED, EXPIRED or INFORMATION_CHANGED")
    return domain.ReplaceReason[name.removeprefix("REPLACE_REASON_")]


def encode_status(status: domain.CardStatus) -> pb.CardStatus.ValueType:
    return pb.CardStatus.Value(f"CARD_STATUS_{status.name}")


def encode_card(card: domain.Card) -> pb.Card:
    return pb.Card(
        card_number=card.card_number,
        card_identification_code=card.card_identification_code,
        issuing_area=card.issuing_area,
        status=encode_status(card.status),
        generation=card.generation,
        valid_until=card.valid_until,
    )


def encode_holder(holder: domain.Holder) -> pb.Holder:
    return pb.Holder(
        social_security_number=holder.social_security_number,
        name=holder.name,
        gender=pb.Gender.Value(f"GENDER_{holder.gender.name}"),
        birth_date=holder.birth_date,
    )


def encode_insurance(insurance: domain.Insurance) -> pb.Insurance:
    return pb.Insurance(
        insured_area=insurance.insured_area,
        insurance_type=pb.InsuranceType.Value(f"INSURANCE_TYPE_{insurance.insurance_type.name}"),
    )


def encode_application(app: domain.Application, region_id: str) -> affairs_pb.Application:
    return affairs_pb.Application(
        application_id=app.application_id,
        stage=affairs_pb.ApplicationStage.Value(f"APPLICATION_STAGE_{app.stage.name}"),
        history=[
            affairs_pb.ApplicationEvent(
                stage=affairs_pb.ApplicationStage.Value(f"APPLICATION_STAGE_{e.stage.name}"), at=e.at
            )
            for e in app.history
        ],
        failure_reason=app.failure_reason,
        issuing_region=region_id,
        card=encode_card(app.card) if app.card else None,
    )
