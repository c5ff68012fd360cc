"""Between the canonical domain and the Beijing–Tianjin–Hebei card centre's wire (``jingjinji.v1``).

Requests are built from domain objects; answers are read back into them. Anything unreadable in an answer
raises :class:`WireError`, which the client turns into ``RegionProtocolError``. A non-zero ``Result`` code
becomes the matching ``Refusal`` (:func:`raise_for_result`).

Wire conventions: dates ``YYYYMMDD`` (the domain's are ``YYYY-MM-DD``), card states the numeric ``kzt``
codes (the values of ``CardStatus``), gender ``xb`` ``"1"``/``"2"``, insurance type ``xzlx`` ``"310"``
(employee) or ``"390"`` (resident).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import TypeVar

from adapters.domain import (
    Application,
    ApplyCard,
    Card,
    CardCredential,
    CardRecord,
    CardStatus,
    ChangeCard,
    Gender,
    Holder,
    Insurance,
    InsuranceType,
    ReplaceCard,
    Stage,
    StageEvent,
)
from adapters.errors import (
    ApplicationNotFound,
    CardAlreadyHeld,
    CardNotFound,
    CardStateConflict,
    HolderMismatch,
    HolderNotFound,
    IdempotencyKeyReused,
    Refusal,
)
from jingjinji.v1 import card_center_pb2 as pb

E = TypeVar("E", bound=enum.Enum)

OK = 0
STATE_CONFLICT = 1003
DUPLICATE_MSGID = 1009
# Each code's refusal takes (message, metadata=...); 1003 and 1009 carry more and are built apart.
REFUSALS: dict[int, type[Refusal]] = {
    1001: CardNotFound,
    1002: HolderMismatch,
    1004: HolderNotFound,
    1005: ApplicationNotFound,
    1006: CardAlreadyHeld,
}
INSURANCE_TYPES = {"310": InsuranceType.EMPLOYEE, "390": InsuranceType.RESIDENT}
_CONFLICT = re.compile(r"action=(?P<action>[A-Z_]+) kzt=(?P<kzt>\d+)")


class WireError(Exception):
    """The card centre answered something this adapter cannot read."""


# --- results ------------------------------------------------------------------------------------


def raise_for_result(result: pb.Result, region: str, request_id: str = "") -> None:
    """Return for code 0; raise the refusal a non-zero code stands for.

    Args:
        result: the answer's result.
        region: the region id, kept in the refusal's metadata.
        request_id: the write's request id, named by ``IdempotencyKeyReused``.

    Raises:
        Refusal: the matching subclass for codes 1001–1009.
        WireError: an unknown code, or one (1000 bad input, 9001 fault) that is no answer to the request.
    """
    if result.code == OK:
        return
    if result.code == STATE_CONFLICT:
        raise state_conflict(result.message)
    if result.code == DUPLICATE_MSGID:
        raise IdempotencyKeyReused(request_id)
    refusal = REFUSALS.get(result.code)
    if refusal is None:
        raise WireError(f"result code {result.code}: {result.message}")
    raise refusal(result.message, metadata={"region": region})


def state_conflict(message: str) -> CardStateConflict:
    """Rebuild a state conflict from its message, ``action=ENABLE kzt=1: ...``."""
    match = _CONFLICT.search(message)
    if match is None:
        raise WireError(f"state conflict without action and kzt: {message!r}")
    return CardStateConflict(match["action"], enum_value(CardStatus, int(match["kzt"]), "kzt"))


# --- requests -----------------------------------------------------------------------------------


def query_card(credential: CardCredential) -> pb.QueryCardRequest:
    """QueryCard for a credential."""
    return pb.QueryCardRequest(
        sfzh=credential.social_security_number,
        kh=credential.card_number,
        sbm=credential.card_identification_code,
        xm=credential.holder_name,
    )


def submit_application(request: ApplyCard) -> pb.SubmitApplicationRequest:
    """SubmitApplication for an ApplyCard; the request id travels as ``msgid``."""
    return pb.SubmitApplicationRequest(
        msgid=request.request_id,
        sfzh=request.social_security_number,
        xm=request.holder_name,
        cbd=request.insured_area,
        lqfs=request.delivery.value,
    )


def change_card_state(request: ChangeCard) -> pb.ChangeCardStateRequest:
    """ChangeCardState for a ChangeCard; the request id travels as ``msgid``."""
    c = request.credential
    return pb.ChangeCardStateRequest(
        msgid=request.request_id,
        sfzh=c.social_security_number,
        kh=c.card_number,
        sbm=c.card_identification_code,
        xm=c.holder_name,
        action=request.action.value,
    )


def replace_card(request: ReplaceCard) -> pb.ReplaceCardRequest:
    """ReplaceCard for a ReplaceCard; the request id travels as ``msgid``."""
    c = request.credential
    return pb.ReplaceCardRequest(
        msgid=request.request_id,
        sfzh=c.social_security_number,
        kh=c.card_number,
        sbm=c.card_identification_code,
        xm=c.holder_name,
        reason=request.reason.value,
    )


# --- answers ------------------------------------------------------------------------------------


def enum_value(kind: type[E], value: object, field: str) -> E:
    """The member of ``kind`` with this wire value, or WireError naming the field."""
    try:
        return kind(value)
    except ValueError:
        raise WireError(f"{field}: unknown value {value!r}") from None


def iso_date(wire: str, field: str) -> str:
    """``YYYYMMDD`` → ``YYYY-MM-DD``, checking that it is a real date."""
    try:
        return dt.datetime.strptime(wire, "%Y%m%d").date().isoformat()
    except ValueError:
        raise WireError(f"{field}: not a YYYYMMDD date: {wire!r}") from None


def card(info: pb.CardInfo) -> Card:
    """A card from its CardInfo."""
    return Card(
        card_number=info.kh,
        card_identification_code=info.sbm,
        issuing_area=info.fkd,
        status=enum_value(CardStatus, info.kzt, "kzt"),
        generation=info.generation,
        valid_until=iso_date(info.yxq, "yxq"),
    )


def holder(info: pb.PersonInfo) -> Holder:
    """A holder from their PersonInfo."""
    return Holder(
        social_security_number=info.sfzh,
        name=info.xm,
        gender=enum_value(Gender, info.xb, "xb"),
        birth_date=iso_date(info.csrq, "csrq"),
    )


def insurance(info: pb.InsuranceInfo) -> Insurance:
    """An insurance from its InsuranceInfo."""
    kind = INSURANCE_TYPES.get(info.xzlx)
    if kind is None:
        raise WireError(f"xzlx: unknown value {info.xzlx!r}")
    return Insurance(insured_area=info.cbd, insurance_type=kind)


def card_record(response: pb.QueryCardResponse) -> CardRecord:
    """The card, holder and insurances of a QueryCard answer."""
    if not (response.HasField("person") and response.HasField("card")):
        raise WireError("QueryCard answered OK without person or card")
    return CardRecord(
        holder=holder(response.person),
        card=card(response.card),
        insurances=tuple(insurance(i) for i in response.insurances),
    )


def application(info: pb.ApplicationInfo) -> Application:
    """An application, its history and (once issued) its card."""
    if not info.sqbh:
        raise WireError("application without sqbh")
    return Application(
        application_id=info.sqbh,
        stage=enum_value(Stage, info.jd, "jd"),
        history=tuple(StageEvent(enum_value(Stage, r.jd, "history.jd"), r.sj) for r in info.history),
        failure_reason=info.failure_reason,
        card=card(info.card) if info.HasField("card") else None,
    )


def changed_card(response: pb.ChangeCardStateResponse) -> Card:
    """The card of a ChangeCardState answer."""
    if not response.HasField("card"):
        raise WireError("ChangeCardState answered OK without the card")
    return card(response.card)
