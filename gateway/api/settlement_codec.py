"""Protobuf ↔ domain for medical settlement and clearing, validating every field on the way in.

Each ``decode_*`` raises :class:`~adapters.errors.InvalidArgument` naming the field (``lines[2].amount_fen``)
before any region is called.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from adapters import domain
from adapters.errors import InvalidArgument
from gateway.api.codec import decode_area, decode_name, decode_presented, decode_request_id
from gateway.domain import (
    NO_CARD,
    ClearingReport,
    ClosePeriod,
    FiledCare,
    PresentedCard,
    PreSettled,
    ReconcileEntry,
    ReconcileResult,
    Reconciliation,
    ReverseRequest,
)
from gateway.ledger import SettlementRecord, SettlementState
from gateway.periods import is_period, stamp
from yikatong.v1 import clearing_pb2 as clearing_pb
from yikatong.v1 import settlement_pb2 as pb

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_RECONCILE_ENTRIES = 10_000  # a day's settlements of one area, and then some
MAX_LINES = 500
MAX_QUANTITY = 100_000
MAX_AMOUNT_FEN = 10**12  # ten billion yuan: far above any bill, far below int64 overflow
MAX_CODE = 64
MAX_ITEM_NAME = 128
LEVELS = (1, 2, 3)


def _text(value: str, field: str, limit: int, *, required: bool = True) -> str:
    if not value:
        if required:
            raise InvalidArgument(field, "is required")
        return ""
    if len(value) > limit or not value.isprintable():
        raise InvalidArgument(field, f"must be at most {limit} printable characters")
    return value


def _enum(enum_type: Any, value: int, field: str, prefix: str) -> str:
    """The enum value's name without its prefix; UNSPECIFIED and unknown numbers are refused."""
    if value not in enum_type.values() or value == 0:
        names = ", ".join(n.removeprefix(prefix) for n in enum_type.keys()[1:])
        raise InvalidArgument(field, f"must be one of {names}")
    return str(enum_type.Name(value)).removeprefix(prefix)


def decode_date(value: str, field: str) -> str:
    """A real calendar date ``YYYY-MM-DD`` in ASCII digits."""
    try:
        if _DATE.fullmatch(value):
            return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise InvalidArgument(field, "must be a date YYYY-MM-DD")


def decode_period(value: str, field: str = "period") -> str:
    if not is_period(value):
        raise InvalidArgument(field, "must be a month YYYY-MM of the years 0001 to 9998")
    return value


def decode_line(msg: pb.BillLine, field: str) -> domain.BillLine:
    code = _text(msg.item_code, f"{field}.item_code", MAX_CODE)
    name = _text(msg.item_name, f"{field}.item_name", MAX_ITEM_NAME, required=False)
    cls = domain.CatalogueClass(
        _enum(pb.CatalogueClass, msg.catalogue_class, f"{field}.catalogue_class", "CATALOGUE_CLASS_")
    )
    if not 1 <= msg.quantity <= MAX_QUANTITY:
        raise InvalidArgument(f"{field}.quantity", f"must be from 1 to {MAX_QUANTITY}")
    for money in ("unit_price_fen", "amount_fen", "price_cap_fen"):
        if not 0 <= getattr(msg, money) <= MAX_AMOUNT_FEN:
            raise InvalidArgument(f"{field}.{money}", f"must be from 0 to {MAX_AMOUNT_FEN} fen")
    if msg.amount_fen != msg.quantity * msg.unit_price_fen:
        raise InvalidArgument(f"{field}.amount_fen", "must equal quantity × unit_price_fen")
    return domain.BillLine(
        code, name, domain.CatalogueClass(cls), msg.quantity, msg.unit_price_fen, msg.amount_fen, msg.price_cap_fen
    )


def decode_bill(msg: pb.SettleRequest | pb.PreSettleRequest, *, request_id: str) -> tuple[PresentedCard, domain.Bill]:
    """The card presented and a validated bill, whose credential and ``insured_area`` stay empty until known."""
    card = decode_presented(msg.card, name_required=True)
    treatment_area = decode_area(msg.venue.area_code, "venue.area_code")
    institution = _text(msg.venue.institution_id, "venue.institution_id", MAX_CODE)
    if msg.hospital_level not in LEVELS:
        raise InvalidArgument("hospital_level", "must be 1, 2 or 3")
    visit = domain.VisitType(_enum(pb.VisitType, msg.visit_type, "visit_type", "VISIT_TYPE_"))
    if not 1 <= len(msg.lines) <= MAX_LINES:
        raise InvalidArgument("lines", f"must hold 1 to {MAX_LINES} lines")
    lines = tuple(decode_line(line, f"lines[{i}]") for i, line in enumerate(msg.lines))
    if sum(line.amount_fen for line in lines) > MAX_AMOUNT_FEN:
        raise InvalidArgument("lines", f"must total at most {MAX_AMOUNT_FEN} fen")
    return card, domain.Bill(
        request_id=request_id,
        credential=NO_CARD,
        insured_area="",
        treatment_area=treatment_area,
        institution_id=institution,
        hospital_level=msg.hospital_level,
        visit_type=visit,
        later_admission=msg.later_admission,
        lines=lines,
        use_personal_account=msg.use_personal_account,
    )


def decode_filing(msg: pb.FileRemoteCareRequest) -> tuple[PresentedCard, domain.FileRemoteCare]:
    request_id = decode_request_id(msg.request_id)
    card = decode_presented(msg.card, name_required=True)
    area = decode_area(msg.treatment_area, "treatment_area")
    kind = domain.FilingType(_enum(pb.FilingType, msg.filing_type, "filing_type", "FILING_TYPE_"))
    valid_from = decode_date(msg.valid_from, "valid_from")
    valid_until = decode_date(msg.valid_until, "valid_until")
    if valid_until < valid_from:
        raise InvalidArgument("valid_until", "must not be before valid_from")
    return card, domain.FileRemoteCare(request_id, NO_CARD, area, kind, valid_from, valid_until)


def decode_settlement_id(value: str, field: str = "settlement_id") -> str:
    return _text(value, field, MAX_CODE)


def decode_reconcile(msg: clearing_pb.ReconcileRequest) -> Reconciliation:
    if len(msg.entries) > MAX_RECONCILE_ENTRIES:
        raise InvalidArgument("entries", f"must hold at most {MAX_RECONCILE_ENTRIES} entries; reconcile in parts")
    return Reconciliation(
        treatment_area=decode_area(msg.treatment_area, "treatment_area"),
        date=decode_date(msg.date, "date"),
        count=msg.count,
        fund_pay_fen=msg.fund_pay_fen,
        entries=tuple(
            ReconcileEntry(decode_settlement_id(e.settlement_id, f"entries[{i}].settlement_id"), e.fund_pay_fen)
            for i, e in enumerate(msg.entries)
        ),
    )


def decode_reversal(msg: pb.ReverseSettlementRequest) -> ReverseRequest:
    return ReverseRequest(
        request_id=decode_request_id(msg.request_id),
        settlement_id=decode_settlement_id(msg.settlement_id),
        reason=decode_name(msg.reason, "reason", required=False) or "撤销",
    )


def decode_close(msg: clearing_pb.CloseClearingPeriodRequest) -> ClosePeriod:
    return ClosePeriod(decode_request_id(msg.request_id), decode_period(msg.period))


def encode_split(split: domain.Split) -> pb.Split:
    return pb.Split(**vars(split))


def encode_pre_settled(answer: PreSettled) -> pb.PreSettleResponse:
    return pb.PreSettleResponse(
        split=encode_split(answer.split), insured_area=answer.insured_area, insured_region=answer.insured_region
    )


def encode_filing(answer: FiledCare) -> pb.FileRemoteCareResponse:
    filing = answer.filing
    return pb.FileRemoteCareResponse(
        filing_id=filing.filing_id,
        insured_region=answer.insured_region,
        insured_area=answer.insured_area,
        treatment_area=filing.treatment_area,
        filing_type=pb.FilingType.Value(f"FILING_TYPE_{filing.filing_type.value}"),
        valid_from=filing.valid_from,
        valid_until=filing.valid_until,
    )


# A reversal on its way is REVERSAL_PENDING to callers; every other state has its own name.
STATES = {
    state: pb.SettlementState.Value(f"SETTLEMENT_STATE_{state.value}")
    for state in SettlementState
    if state is not SettlementState.REVERSING
} | {SettlementState.REVERSING: pb.SETTLEMENT_STATE_REVERSAL_PENDING}


def encode_settlement(r: SettlementRecord) -> pb.Settlement:
    return pb.Settlement(
        settlement_id=r.settlement_id,
        request_id=r.request_id,
        state=STATES[r.state],
        insured_area=r.insured_area,
        treatment_area=r.treatment_area,
        period=r.period,
        split=encode_split(r.split) if r.split else None,
        insured_region=r.insured_region,
        region_settlement_id=r.region_settlement_id,
        visit_type=pb.VisitType.Value(f"VISIT_TYPE_{r.visit_type.value}"),
        hospital_level=r.hospital_level,
        institution_id=r.institution_id,
        settled_at=stamp(r.settled_at),
        reversed_at=stamp(r.reversed_at),
        reversal_period=r.reversal_period,
    )


def encode_report(report: ClearingReport) -> clearing_pb.ClearingReport:
    return clearing_pb.ClearingReport(
        period=report.period,
        state=clearing_pb.PeriodState.Value(f"PERIOD_STATE_{report.state.value}"),
        pairs=[
            clearing_pb.ClearingPair(
                insured_province=p.insured_province,
                treatment_province=p.treatment_province,
                count=p.count,
                fund_pay_fen=p.fund_pay_fen,
            )
            for p in report.pairs
        ],
        provinces=[clearing_pb.ProvincePosition(province=p.name, net_fen=p.net_fen) for p in report.provinces],
        regions=[clearing_pb.RegionPosition(region=r.name, net_fen=r.net_fen) for r in report.regions],
        count=report.count,
        fund_pay_fen=report.fund_pay_fen,
        closed_at=report.closed_at,
    )


def encode_reconciliation(result: ReconcileResult) -> clearing_pb.ReconcileResponse:
    return clearing_pb.ReconcileResponse(
        matched=result.matched,
        differing_settlement_ids=result.differing_settlement_ids,
        count=result.count,
        fund_pay_fen=result.fund_pay_fen,
    )
