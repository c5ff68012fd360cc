"""Between the canonical domain and the Beijing–Tianjin–Hebei region's wire (``jingjinji.v1``).

Requests are built from domain objects; answers are read back into them. Anything unreadable in an answer
raises :class:`WireError`, which the client turns into ``RegionProtocolError``. A non-zero ``Result`` code
becomes the matching ``Refusal`` (:func:`raise_for_result`); the card centre and the medical-insurance
centre share the codes, which :mod:`adapters.jingjinji.protocol` declares with the code tables.

Wire conventions: dates ``YYYYMMDD`` (the domain's are ``YYYY-MM-DD``), card states the numeric ``kzt``
codes (the values of ``CardStatus``), gender ``xb`` ``"1"``/``"2"``, insurance type ``xzlx`` ``"310"``
(employee) or ``"390"`` (resident), money integer fen. The medical enums carry the domain's names after
their prefix: ``CATALOGUE_CLASS_B`` is ``CatalogueClass.B``, ``SETTLEMENT_STATE_CORRECTED`` is
``OutcomeState.CORRECTED``; so does the card centre's ``ServiceKind`` (``SERVICE_KIND_SCENIC_SPOT``). A
stand-in advice's times travel as the hub wrote them (RFC 3339).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TypeVar

from adapters.domain import (
    Application,
    ApplyCard,
    Bill,
    BillLine,
    Card,
    CardCredential,
    CardRecord,
    CardStatus,
    ChangeCard,
    FileRemoteCare,
    Filing,
    Gender,
    Holder,
    Insurance,
    OutcomeState,
    RegionSettlement,
    ReplaceCard,
    Reversal,
    SettlementOutcome,
    Split,
    Stage,
    StageEvent,
    StandInAdvice,
)
from adapters.errors import (
    CardStateConflict,
    IdempotencyKeyReused,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
)
from adapters.jingjinji.protocol import (
    CATALOGUE_CLASS_CODES,
    CONFLICT,
    FILING_TYPE_CODES,
    FILING_TYPES,
    NOT_SETTLED,
    OK,
    RESULTS,
    SERVICE_KIND_CODES,
    SETTLEMENT_STATES,
    VISIT_TYPE_CODES,
    XZLX,
    wire_date,
)
from jingjinji.v1 import card_center_pb2 as pb
from jingjinji.v1 import medical_insurance_pb2 as mpb

E = TypeVar("E", bound=enum.Enum)


class WireError(Exception):
    """The card centre answered something this adapter cannot read."""


# --- results ------------------------------------------------------------------------------------


def raise_for_result(result: pb.Result, region: str, request_id: str = "", settlement_request_id: str = "") -> None:
    """Return for code 0; raise the refusal a non-zero code stands for.

    Args:
        result: the answer's result.
        region: the region id, kept in the refusal's metadata.
        request_id: the write's request id, named by ``IdempotencyKeyReused`` and ``SettlementCorrected``.
        settlement_request_id: the settlement a reversal names, named by ``SettlementNotFound`` and
            ``SettlementNotSettled``.

    Raises:
        Refusal: the matching subclass for codes 1001–1013.
        WireError: an unknown code, or one (1000 bad input, 9001 fault) that is no answer to the request.
    """
    if result.code == OK:
        return
    refusal = RESULTS.refusal(result.code)
    if refusal is CardStateConflict:
        raise state_conflict(result.message)
    if refusal is IdempotencyKeyReused:
        raise IdempotencyKeyReused(request_id)
    if refusal is SettlementNotSettled:
        raise not_settled(result.message, settlement_request_id)
    if refusal is SettlementNotFound:
        raise SettlementNotFound(result.message, metadata={"region": region, "request_id": settlement_request_id})
    if refusal is SettlementCorrected:
        raise SettlementCorrected(result.message, metadata={"region": region, "request_id": request_id})
    if refusal is None:
        raise WireError(f"result code {result.code}: {result.message}")
    raise refusal(result.message, metadata={"region": region})


def state_conflict(message: str) -> CardStateConflict:
    """Rebuild a state conflict from its message, ``action=ENABLE kzt=1: ...``."""
    match = CONFLICT.search(message)
    if match is None:
        raise WireError(f"state conflict without action and kzt: {message!r}")
    return CardStateConflict(match["action"], enum_value(CardStatus, int(match["kzt"]), "kzt"))


def not_settled(message: str, settlement_request_id: str) -> SettlementNotSettled:
    """Rebuild a refused reversal from its message, ``state=REVERSED: ...``."""
    match = NOT_SETTLED.search(message)
    if match is None:
        raise WireError(f"settlement not settled without its state: {message!r}")
    return SettlementNotSettled(settlement_request_id, enum_value(OutcomeState, match["state"], "state").value)


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


def stand_in_advice(advice: StandInAdvice) -> pb.RecordStandInAdviceRequest:
    """RecordStandInAdvice for an advice; the advice id travels as ``msgid``."""
    return pb.RecordStandInAdviceRequest(
        msgid=advice.advice_id,
        kh=advice.card_number,
        fkd=advice.issuing_area,
        service_kind=SERVICE_KIND_CODES[advice.service_kind],
        venue_area=advice.venue_area,
        granted_at=advice.granted_at,
        state_confirmed_at=advice.status_confirmed_at,
    )


def patient(credential: CardCredential) -> mpb.Patient:
    """The presented card as the medical-insurance centre reads it."""
    return mpb.Patient(
        sfzh=credential.social_security_number,
        xm=credential.holder_name,
        kh=credential.card_number,
        sbm=credential.card_identification_code,
        fkd=credential.issuing_area,
    )


def file_remote_care(request: FileRemoteCare) -> mpb.FileRemoteCareRequest:
    """FileRemoteCare for a filing request; the request id travels as ``msgid``."""
    return mpb.FileRemoteCareRequest(
        msgid=request.request_id,
        patient=patient(request.credential),
        treatment_area=request.treatment_area,
        filing_type=FILING_TYPE_CODES[request.filing_type],
        valid_from=wire_date(request.valid_from),
        valid_until=wire_date(request.valid_until),
    )


def bill_line(line: BillLine) -> mpb.BillLine:
    """A bill line, amounts in fen."""
    return mpb.BillLine(
        item_code=line.item_code,
        item_name=line.item_name,
        catalogue_class=CATALOGUE_CLASS_CODES[line.catalogue_class],
        quantity=line.quantity,
        unit_price_fen=line.unit_price_fen,
        amount_fen=line.amount_fen,
        price_cap_fen=line.price_cap_fen,
    )


def bill(request: Bill) -> mpb.Bill:
    """The bill of a PreSettle or Settle; its request id travels beside it, as ``msgid``, in Settle only."""
    return mpb.Bill(
        patient=patient(request.credential),
        cbd=request.insured_area,
        treatment_area=request.treatment_area,
        institution_id=request.institution_id,
        hospital_level=request.hospital_level,
        visit_type=VISIT_TYPE_CODES[request.visit_type],
        later_admission=request.later_admission,
        lines=[bill_line(line) for line in request.lines],
        use_personal_account=request.use_personal_account,
    )


def reverse_settlement(request: Reversal) -> mpb.ReverseSettlementRequest:
    """ReverseSettlement: the reversal's own id as ``msgid``, the settlement's as ``omsgid``."""
    return mpb.ReverseSettlementRequest(
        msgid=request.request_id,
        omsgid=request.settlement_request_id,
        sfzh=request.social_security_number,
        reason=request.reason,
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
        if len(wire) != 8 or not (wire.isascii() and wire.isdigit()):
            raise ValueError(wire)
        return dt.date(int(wire[:4]), int(wire[4:6]), int(wire[6:])).isoformat()  # strptime takes ten times longer
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
    kind = XZLX.get(info.xzlx)
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


def filing(response: mpb.FileRemoteCareResponse) -> Filing:
    """The filing of a FileRemoteCare answer."""
    if not response.HasField("filing") or not response.filing.filing_id:
        raise WireError("FileRemoteCare answered OK without the filing")
    info = response.filing
    kind = FILING_TYPES.get(info.filing_type)
    if kind is None:
        raise WireError(f"filing_type: unknown value {info.filing_type}")
    return Filing(
        filing_id=info.filing_id,
        treatment_area=info.treatment_area,
        filing_type=kind,
        valid_from=iso_date(info.valid_from, "valid_from"),
        valid_until=iso_date(info.valid_until, "valid_until"),
    )


def split(info: mpb.Split) -> Split:
    """A split, part by part in fen; whether it balances is the hub's to check."""
    return Split(
        total_fen=info.total_fen,
        full_self_pay_fen=info.full_self_pay_fen,
        over_cap_fen=info.over_cap_fen,
        b_class_self_pay_fen=info.b_class_self_pay_fen,
        in_scope_fen=info.in_scope_fen,
        deductible_fen=info.deductible_fen,
        fund_pay_fen=info.fund_pay_fen,
        account_pay_fen=info.account_pay_fen,
        cash_pay_fen=info.cash_pay_fen,
    )


def pre_settled(response: mpb.PreSettleResponse) -> Split:
    """The split of a PreSettle answer."""
    if not response.HasField("split"):
        raise WireError("PreSettle answered OK without the split")
    return split(response.split)


def settlement(info: mpb.SettlementInfo, request_id: str) -> RegionSettlement:
    """A booked settlement, which must be the one of ``request_id``."""
    if info.msgid != request_id:
        raise WireError(f"answered with the settlement of msgid {info.msgid!r}, not {request_id!r}")
    if not info.settlement_id or not info.HasField("split"):
        raise WireError("settlement without settlement_id or split")
    return RegionSettlement(request_id=request_id, region_settlement_id=info.settlement_id, split=split(info.split))


def settled(response: mpb.SettleResponse, request_id: str) -> RegionSettlement:
    """The settlement of a Settle answer."""
    if not response.HasField("settlement"):
        raise WireError("Settle answered OK without the settlement")
    return settlement(response.settlement, request_id)


def settlement_outcome(response: mpb.QuerySettlementResponse, request_id: str) -> SettlementOutcome:
    """The state of a QuerySettlement answer, with the settlement when it was booked."""
    state = SETTLEMENT_STATES.get(response.state)
    if state is None:
        raise WireError(f"state: unspecified or unknown value {response.state}")
    booked = settlement(response.settlement, request_id) if response.HasField("settlement") else None
    if booked is None and state in (OutcomeState.SETTLED, OutcomeState.REVERSED):
        raise WireError(f"state {state.value} without the settlement")
    return SettlementOutcome(state, booked if state is not OutcomeState.NOT_FOUND else None)
