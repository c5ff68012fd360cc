"""Protobuf ↔ canonical domain for cards, card affairs, resident services and events, validating on the way in.

Every ``decode_*`` raises :class:`~adapters.errors.InvalidArgument` naming the request field
(``card.card_number``), before any region is called (``gateway.validation``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from adapters import domain
from adapters.errors import InvalidArgument
from adapters.identifiers import parse_card_number
from gateway import validation
from gateway.domain import Decision, ECardToken, PresentedCard, RegionApplication
from yikatong.v1 import card_affairs_pb2 as affairs_pb
from yikatong.v1 import common_pb2 as pb
from yikatong.v1 import events_pb2 as events_pb
from yikatong.v1 import resident_pb2 as resident_pb

decode_ssn = validation.ssn
decode_area = validation.area
decode_request_id = validation.request_id
decode_name = validation.name


def decode_credential(
    msg: pb.CardCredential, field: str = "card", *, name_required: bool = False
) -> domain.CardCredential:
    """A validated credential of a physical card's fields."""
    return validation.credential(
        msg.social_security_number,
        msg.card_number,
        msg.card_identification_code,
        msg.issuing_area,
        msg.holder_name,
        field,
        name_required=name_required,
    )


def decode_presented(msg: pb.CardCredential, field: str = "card", *, name_required: bool = False) -> PresentedCard:
    """A card's fields, or an e-card token standing for them (DESIGN §4.8), wherever a card is taken; the token
    is verified, and used up, by the cards service."""
    if msg.ecard_token:
        return ECardToken(msg.ecard_token, f"{field}.ecard_token")
    return decode_credential(msg, field, name_required=name_required)


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


def decode_card_event(msg: events_pb.CardEvent, region_of: Callable[[str], str]) -> domain.CardEvent:
    """A region's card event; the card must be one the publishing region issued (``region_of`` a province)."""
    event_id = decode_request_id(msg.event_id, "event.event_id")
    number = validation.checked("event.card_number", parse_card_number, msg.card_number)
    area = decode_area(msg.issuing_area, "event.issuing_area")
    if not msg.region or region_of(area[:2]) != msg.region:
        raise InvalidArgument("event.issuing_area", f"is not served by region {msg.region[:64]!r}")
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


def encode_application(found: RegionApplication) -> affairs_pb.Application:
    app, region_id = found.application, found.region
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


def encode_decision(decision: Decision) -> resident_pb.AuthorizeServiceResponse:
    return resident_pb.AuthorizeServiceResponse(
        authorized=decision.authorized,
        reason=decision.reason,
        via_stand_in=decision.via_stand_in,
        issuing_region=decision.issuing_region,
        card_status=encode_status(decision.status) if decision.status else pb.CARD_STATUS_UNSPECIFIED,
        local=decision.local,
    )
