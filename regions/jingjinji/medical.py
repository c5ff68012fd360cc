"""The Beijing–Tianjin–Hebei medical-insurance centre: ``jingjinji.v1.MedicalInsuranceService`` on a MedicalSystem.

It answers like the card centre (``regions.jingjinji.server``): a ``Result`` in every response, 1000 for a
request field it cannot read, the shared refusal codes for what the insured place refuses. Writes are keyed
on the caller's ``msgid``; ``QuerySettlement`` and ``CorrectSettlement`` name an earlier settlement message
as ``omsgid``. Money is integer fen, dates ``YYYYMMDD``, enums carry the domain's names after their prefix
(``CATALOGUE_CLASS_B`` is ``CatalogueClass.B``).
"""

from __future__ import annotations

import datetime as dt

from adapters.domain import (
    Bill,
    BillLine,
    CardCredential,
    FileRemoteCare,
    Filing,
    RegionSettlement,
    Reversal,
    Split,
)
from adapters.errors import Refusal
from adapters.jingjinji.protocol import (
    CATALOGUE_CLASSES,
    FILING_TYPE_CODES,
    FILING_TYPES,
    SETTLEMENT_STATE_CODES,
    VISIT_TYPES,
    wire_date,
)
from jingjinji.v1 import medical_insurance_pb2 as mpb
from jingjinji.v1.medical_insurance_pb2_grpc import MedicalInsuranceServiceServicer
from regions.jingjinji.wire import BadInput, Context, ok, outcome, parse_area, parse_enum, parse_msgid
from regions.medical import MedicalSystem

HOSPITAL_LEVELS = (1, 2, 3)
# Bounds that keep every sum of a bill inside int64 (a real bill is far below them).
MAX_LINES = 1000
MAX_LINE_FEN = 10**12


# --- wire → domain ------------------------------------------------------------------------------


def parse_date(wire: str, field: str) -> str:
    """``YYYYMMDD`` → ``YYYY-MM-DD``, checking that it is a real date."""
    try:
        return dt.datetime.strptime(wire, "%Y%m%d").date().isoformat()
    except ValueError:
        raise BadInput(f"{field} must be a YYYYMMDD date") from None


def parse_patient(patient: mpb.Patient, field: str) -> CardCredential:
    """The presented card; the person's number is what the centre keys its records on."""
    if not patient.sfzh:
        raise BadInput(f"{field}.sfzh is required")
    return CardCredential(
        social_security_number=patient.sfzh,
        card_number=patient.kh,
        card_identification_code=patient.sbm,
        issuing_area=patient.fkd,
        holder_name=patient.xm,
    )


def parse_line(line: mpb.BillLine, field: str) -> BillLine:
    """One bill line: a positive quantity, amounts from 0 to ``MAX_LINE_FEN``, amount = quantity × unit price."""
    if line.quantity < 1:
        raise BadInput(f"{field}.quantity must be at least 1")
    for name in ("unit_price_fen", "amount_fen", "price_cap_fen"):
        if not 0 <= getattr(line, name) <= MAX_LINE_FEN:
            raise BadInput(f"{field}.{name} must be from 0 to {MAX_LINE_FEN}")
    if line.amount_fen != line.quantity * line.unit_price_fen:
        raise BadInput(f"{field}.amount_fen must equal quantity × unit_price_fen")
    return BillLine(
        item_code=line.item_code,
        item_name=line.item_name,
        catalogue_class=parse_enum(CATALOGUE_CLASSES, line.catalogue_class, f"{field}.catalogue_class"),
        quantity=line.quantity,
        unit_price_fen=line.unit_price_fen,
        amount_fen=line.amount_fen,
        price_cap_fen=line.price_cap_fen,
    )


def parse_bill(msgid: str, bill: mpb.Bill) -> Bill:
    """A bill to (pre-)settle under ``msgid`` (empty for a pre-settlement)."""
    if not 1 <= len(bill.lines) <= MAX_LINES:
        raise BadInput(f"bill.lines must hold 1 to {MAX_LINES} lines")
    if bill.hospital_level not in HOSPITAL_LEVELS:
        raise BadInput(f"bill.hospital_level must be 1, 2 or 3, not {bill.hospital_level}")
    return Bill(
        request_id=msgid,
        credential=parse_patient(bill.patient, "bill.patient"),
        insured_area=parse_area(bill.cbd, "bill.cbd"),
        treatment_area=parse_area(bill.treatment_area, "bill.treatment_area"),
        institution_id=bill.institution_id,
        hospital_level=bill.hospital_level,
        visit_type=parse_enum(VISIT_TYPES, bill.visit_type, "bill.visit_type"),
        later_admission=bill.later_admission,
        lines=tuple(parse_line(line, f"bill.lines[{i}]") for i, line in enumerate(bill.lines)),
        use_personal_account=bill.use_personal_account,
    )


def parse_filing(msgid: str, request: mpb.FileRemoteCareRequest) -> FileRemoteCare:
    """A filing request; the period must not end before it starts."""
    valid_from = parse_date(request.valid_from, "valid_from")
    valid_until = parse_date(request.valid_until, "valid_until")
    if valid_until < valid_from:
        raise BadInput("valid_until is before valid_from")
    return FileRemoteCare(
        request_id=msgid,
        credential=parse_patient(request.patient, "patient"),
        treatment_area=parse_area(request.treatment_area, "treatment_area"),
        filing_type=parse_enum(FILING_TYPES, request.filing_type, "filing_type"),
        valid_from=valid_from,
        valid_until=valid_until,
    )


def parse_reversal(request: mpb.ReverseSettlementRequest) -> Reversal:
    """A reversal under its own message id of the settlement booked under ``omsgid``."""
    msgid, omsgid = parse_msgid(request.msgid), parse_msgid(request.omsgid, "omsgid")
    if not request.sfzh:
        raise BadInput("sfzh is required")
    return Reversal(
        request_id=msgid, settlement_request_id=omsgid, social_security_number=request.sfzh, reason=request.reason
    )


# --- domain → wire ------------------------------------------------------------------------------


def filing_info(filing: Filing) -> mpb.FilingInfo:
    """A filing as this wire carries it."""
    return mpb.FilingInfo(
        filing_id=filing.filing_id,
        treatment_area=filing.treatment_area,
        filing_type=FILING_TYPE_CODES[filing.filing_type],
        valid_from=wire_date(filing.valid_from),
        valid_until=wire_date(filing.valid_until),
    )


def split_info(split: Split) -> mpb.Split:
    """A split, part by part in fen."""
    return mpb.Split(**vars(split))


def settlement_info(settlement: RegionSettlement) -> mpb.SettlementInfo:
    """A booked settlement as this wire carries it."""
    return mpb.SettlementInfo(
        msgid=settlement.request_id,
        settlement_id=settlement.region_settlement_id,
        split=split_info(settlement.split),
    )


# --- the service --------------------------------------------------------------------------------


class MedicalInsurance(MedicalInsuranceServiceServicer):
    """``jingjinji.v1.MedicalInsuranceService`` on the region's medical-insurance system.

    Args:
        system: insured people's accounts, accumulators, filings and settlements.
    """

    def __init__(self, system: MedicalSystem) -> None:
        self._system = system

    async def FileRemoteCare(self, request: mpb.FileRemoteCareRequest, context: Context) -> mpb.FileRemoteCareResponse:
        """备案; a repeat of the message id returns the same filing."""
        try:
            msgid = parse_msgid(request.msgid)
            filing = self._system.file(msgid, parse_filing(msgid, request))
        except (Refusal, BadInput) as exc:
            return mpb.FileRemoteCareResponse(result=outcome(exc))
        return mpb.FileRemoteCareResponse(result=ok(), filing=filing_info(filing))

    async def PreSettle(self, request: mpb.PreSettleRequest, context: Context) -> mpb.PreSettleResponse:
        """预结算: the split the bill would get now."""
        try:
            split = self._system.pre_settle(parse_bill("", request.bill))
        except (Refusal, BadInput) as exc:
            return mpb.PreSettleResponse(result=outcome(exc))
        return mpb.PreSettleResponse(result=ok(), split=split_info(split))

    async def Settle(self, request: mpb.SettleRequest, context: Context) -> mpb.SettleResponse:
        """结算, once per message id."""
        try:
            settlement = self._system.settle(parse_bill(parse_msgid(request.msgid), request.bill))
        except (Refusal, BadInput) as exc:
            return mpb.SettleResponse(result=outcome(exc))
        return mpb.SettleResponse(result=ok(), settlement=settlement_info(settlement))

    async def QuerySettlement(
        self, request: mpb.QuerySettlementRequest, context: Context
    ) -> mpb.QuerySettlementResponse:
        """What became of a settlement message id."""
        try:
            found = self._system.outcome(parse_msgid(request.omsgid, "omsgid"))
        except BadInput as exc:
            return mpb.QuerySettlementResponse(result=outcome(exc))
        booked = settlement_info(found.settlement) if found.settlement else None
        return mpb.QuerySettlementResponse(result=ok(), state=SETTLEMENT_STATE_CODES[found.state], settlement=booked)

    async def CorrectSettlement(
        self, request: mpb.CorrectSettlementRequest, context: Context
    ) -> mpb.CorrectSettlementResponse:
        """冲正: void a settlement message id, whether or not it arrived."""
        try:
            self._system.correct(parse_msgid(request.omsgid, "omsgid"))
        except BadInput as exc:
            return mpb.CorrectSettlementResponse(result=outcome(exc))
        return mpb.CorrectSettlementResponse(result=ok())

    async def ReverseSettlement(
        self, request: mpb.ReverseSettlementRequest, context: Context
    ) -> mpb.ReverseSettlementResponse:
        """撤销 of a settled bill, once."""
        try:
            self._system.reverse(parse_reversal(request))
        except (Refusal, BadInput) as exc:
            return mpb.ReverseSettlementResponse(result=outcome(exc))
        return mpb.ReverseSettlementResponse(result=ok())
