"""The Beijing–Tianjin–Hebei wire on the centres' side: message builders and field readers both services share.

The result codes, code tables and refusal message forms are :mod:`adapters.jingjinji.protocol`'s, which the
adapter shares; the readers here are the centres' own checks of what a caller sent.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, TypeVar

import grpc

from adapters import identifiers
from adapters.domain import (
    Application,
    Card,
    CardAction,
    CardStatus,
    Delivery,
    Holder,
    Insurance,
    ReplaceReason,
)
from adapters.errors import (
    CardStateConflict,
    Refusal,
    SettlementNotSettled,
)
from adapters.jingjinji.protocol import (
    BAD_INPUT,
    OK,
    RESULTS,
    XZLX_CODES,
    conflict_message,
    not_settled_message,
    wire_date,
)
from adapters.jsonwire import is_rfc3339
from jingjinji.v1 import card_center_pb2 as pb

E = TypeVar("E", bound=enum.Enum)
W = TypeVar("W", bound=int)

Context = grpc.aio.ServicerContext[Any, Any]

MAX_MSGID_LENGTH = 64


class BadInput(Exception):
    """A request field this card centre cannot read (answered with result code 1000)."""


# --- domain → wire ------------------------------------------------------------------------------


def card_info(card: Card) -> pb.CardInfo:
    """The card as this wire carries it."""
    return pb.CardInfo(
        kh=card.card_number,
        sbm=card.card_identification_code,
        fkd=card.issuing_area,
        kzt=card.status.value,
        generation=card.generation,
        yxq=wire_date(card.valid_until),
    )


def person_info(holder: Holder) -> pb.PersonInfo:
    """The holder as this wire carries them."""
    return pb.PersonInfo(
        sfzh=holder.social_security_number,
        xm=holder.name,
        xb=holder.gender.value,
        csrq=wire_date(holder.birth_date),
    )


def insurance_info(insurance: Insurance) -> pb.InsuranceInfo:
    """An insurance as this wire carries it."""
    return pb.InsuranceInfo(cbd=insurance.insured_area, xzlx=XZLX_CODES[insurance.insurance_type])


def application_info(application: Application) -> pb.ApplicationInfo:
    """An application, its history and (once issued) its card as this wire carries them."""
    return pb.ApplicationInfo(
        sqbh=application.application_id,
        jd=application.stage.value,
        history=[pb.StageRecord(jd=e.stage.value, sj=e.at) for e in application.history],
        failure_reason=application.failure_reason,
        card=card_info(application.card) if application.card else None,
    )


def ok() -> pb.Result:
    """The result of a call that succeeded."""
    return pb.Result(code=OK, message="OK")


def outcome(exc: Refusal | BadInput) -> pb.Result:
    """The result code and message for a refusal or unreadable input."""
    if isinstance(exc, BadInput):
        return pb.Result(code=BAD_INPUT, message=f"bad input: {exc}")
    code = RESULTS.code(exc) or BAD_INPUT
    if isinstance(exc, CardStateConflict):
        status = CardStatus[exc.metadata["status"]]
        return pb.Result(code=code, message=conflict_message(exc.metadata["action"], status, exc.message))
    if isinstance(exc, SettlementNotSettled):
        return pb.Result(code=code, message=not_settled_message(exc.metadata["state"], exc.message))
    return pb.Result(code=code, message=exc.message)


# --- wire → domain ------------------------------------------------------------------------------


def parse_msgid(msgid: str, field: str = "msgid") -> str:
    """A message id: of a write, or of the earlier message ``field`` names. The centre keys on it."""
    if not 1 <= len(msgid) <= MAX_MSGID_LENGTH or not msgid.isprintable() or not msgid.isascii():
        raise BadInput(f"{field} must be 1-64 printable ASCII characters")
    return msgid


def parse_action(action: str) -> CardAction:
    """``ENABLE``, ``REPORT_LOSS`` or ``CANCEL_LOSS``."""
    try:
        return CardAction(action)
    except ValueError:
        raise BadInput(f"unknown action {action!r}") from None


def parse_delivery(lqfs: str) -> Delivery:
    """``OUTLET`` or ``MAIL``."""
    try:
        return Delivery(lqfs)
    except ValueError:
        raise BadInput(f"unknown lqfs {lqfs!r}") from None


def parse_reason(reason: str) -> str:
    """A replacement reason (``LOST``, ``DAMAGED``, ``EXPIRED``, ``INFORMATION_CHANGED``)."""
    try:
        return ReplaceReason(reason).value
    except ValueError:
        raise BadInput(f"unknown reason {reason!r}") from None


def parse_card_number(kh: str, field: str = "kh") -> str:
    """A card number: 8 of [0-9A-Z] and its check character."""
    try:
        return identifiers.parse_card_number(kh)
    except identifiers.InvalidIdentifier as exc:
        raise BadInput(f"{field} {exc.problem}") from None


def parse_time(value: str, field: str) -> str:
    """An RFC 3339 time with its offset (``2025-03-01T08:30:00+08:00``), returned as sent."""
    if not is_rfc3339(value):
        raise BadInput(f"{field} must be an RFC 3339 time with an offset")
    return value


def parse_enum(members: Mapping[W, E], value: W, field: str) -> E:
    """The domain member a wire enum value stands for; unspecified or unknown values are bad input."""
    member = members.get(value)
    if member is None:
        raise BadInput(f"{field} is unspecified or unknown ({value})")
    return member


def parse_area(area: str, field: str) -> str:
    """A 6-digit area code."""
    if len(area) != 6 or not (area.isascii() and area.isdigit()):
        raise BadInput(f"{field} must be a 6-digit area code")
    return area
