"""The 长三角 sandbox's medical-settlement services (DESIGN §4.5), in the national interface's field names.

Each handler reads ``input.data`` into the canonical domain, calls the region's
:class:`~regions.medical.MedicalSystem` and writes its ``output``; the table of services and fields is in the
``regions.yangtze_delta.server`` docstring. Amounts are yuan strings with two decimals (``fields.yuan``).

Wire codes (the tables are :mod:`adapters.yangtze_delta.protocol`'s, which the adapter shares):

* ``chrgitm_lv`` (catalogue class): "01" 甲类 A, "02" 乙类 B, "03" 丙类 C, "04" out of catalogue;
* ``med_type``: "11" outpatient, "21" inpatient; ``medins_lv``: hospital level "1", "2", "3";
* ``fil_type`` (备案 type): long-term "11" retiree resettled, "12" long-term resident, "13" working away;
  temporary "21" referral, "22" emergency, "29" other temporary;
* ``setl_stas`` (what the region knows of a settlement msgid): "0" not found, "1" settled, "2" reversed (撤销),
  "3" corrected (冲正);
* flags (``acct_used_flag``, ``later_adm_flag``): "1" yes, "0" no.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapters.domain import (
    Bill,
    BillLine,
    CardCredential,
    FileRemoteCare,
    Filing,
    OutcomeState,
    RegionSettlement,
    Reversal,
    Split,
)
from adapters.errors import Refusal, SettlementNotSettled
from adapters.yangtze_delta import protocol
from adapters.yangtze_delta.protocol import CHRGITM_LV, FIL_TYPE, MED_TYPE, SETL_STAS_CODES, SETTLE, SPLIT_FIELDS
from regions.backend import Backend
from regions.yangtze_delta import fields
from regions.yangtze_delta.fields import BadInput

Output = dict[str, Any]
Handler = Callable[[Backend, str, Mapping[str, Any]], Output]

MAX_LINES = 1000


# --- input.data → domain ----------------------------------------------------------------------------------


def _credential(data: Mapping[str, Any]) -> CardCredential:
    """The person and card the request names; only ``certno`` is required (the card may be another region's)."""
    return CardCredential(
        social_security_number=fields.text(data, "certno"),
        card_number=fields.text(data, "mdtrt_cert_no", required=False),
        card_identification_code=fields.text(data, "card_sn", required=False),
        issuing_area=fields.text(data, "card_admdvs", required=False),
        holder_name=fields.text(data, "psn_name", required=False),
    )


def _line(row: Mapping[str, Any]) -> BillLine:
    line = BillLine(
        item_code=fields.text(row, "med_list_codg"),
        item_name=fields.text(row, "medins_list_name", required=False),
        catalogue_class=CHRGITM_LV[fields.name(row, "chrgitm_lv", tuple(CHRGITM_LV))],
        quantity=fields.count(row, "cnt"),
        unit_price_fen=fields.amount(row, "pric"),
        amount_fen=fields.amount(row, "det_item_fee_sumamt"),
        price_cap_fen=fields.amount(row, "pric_uplmt_amt"),
    )
    if line.amount_fen != line.quantity * line.unit_price_fen:
        raise BadInput("det_item_fee_sumamt must equal cnt × pric")
    return line


def _lines(data: Mapping[str, Any]) -> tuple[BillLine, ...]:
    lines = []
    for i, row in enumerate(fields.rows(data, "feedetail", limit=MAX_LINES)):
        try:
            lines.append(_line(row))
        except BadInput as exc:
            raise BadInput(f"feedetail[{i}].{exc}") from None
    if fields.amount(data, "medfee_sumamt") != sum(line.amount_fen for line in lines):
        raise BadInput("medfee_sumamt must equal the sum of feedetail det_item_fee_sumamt")
    return tuple(lines)


def _bill(msgid: str, data: Mapping[str, Any]) -> Bill:
    """The bill of a 2206 or 2207 request; ``msgid`` becomes its request id."""
    return Bill(
        request_id=msgid,
        credential=_credential(data),
        insured_area=fields.area(data, "insuplc_admdvs"),
        treatment_area=fields.area(data, "mdtrtarea_admvs"),
        institution_id=fields.text(data, "fixmedins_code", required=False),
        hospital_level=int(fields.name(data, "medins_lv", protocol.HOSPITAL_LEVELS)),
        visit_type=MED_TYPE[fields.name(data, "med_type", tuple(MED_TYPE))],
        later_admission=fields.flag(data, "later_adm_flag"),
        lines=_lines(data),
        use_personal_account=fields.flag(data, "acct_used_flag"),
    )


def _filing_request(msgid: str, data: Mapping[str, Any]) -> FileRemoteCare:
    request = FileRemoteCare(
        request_id=msgid,
        credential=_credential(data),
        treatment_area=fields.area(data, "mdtrtarea_admvs"),
        filing_type=FIL_TYPE[fields.name(data, "fil_type", tuple(FIL_TYPE))],
        valid_from=fields.date(data, "begndate"),
        valid_until=fields.date(data, "enddate"),
    )
    if request.valid_from > request.valid_until:
        raise BadInput("begndate must not be after enddate")
    return request


# --- domain → output --------------------------------------------------------------------------------------


def _amounts(split: Split) -> Output:
    return {wire: fields.yuan(getattr(split, part)) for part, wire in SPLIT_FIELDS.items()}


def _setlinfo(settlement: RegionSettlement) -> Output:
    return {
        "setl_id": settlement.region_settlement_id,
        "setl_msgid": settlement.request_id,
        **_amounts(settlement.split),
    }


def _filinfo(filing: Filing) -> Output:
    return {
        "trt_dcla_detl_sn": filing.filing_id,
        "mdtrtarea_admvs": filing.treatment_area,
        "fil_type": protocol.FIL_TYPE_CODES[filing.filing_type],
        "begndate": filing.valid_from,
        "enddate": filing.valid_until,
    }


def refusal_details(exc: Refusal) -> Output:
    """The ``output`` that goes with a settlement refusal (which settlement, in which state)."""
    if isinstance(exc, SettlementNotSettled):
        return {
            "omsgid": exc.metadata["settlement_id"],
            "setl_stas": SETL_STAS_CODES[OutcomeState(exc.metadata["state"])],
        }
    return {}


# --- the services -----------------------------------------------------------------------------------------


def _file(backend: Backend, msgid: str, data: Mapping[str, Any]) -> Output:
    return {"filinfo": _filinfo(backend.medical.file(msgid, _filing_request(msgid, data)))}


def _pre_settle(backend: Backend, msgid: str, data: Mapping[str, Any]) -> Output:
    return {"setlinfo": _amounts(backend.medical.pre_settle(_bill(msgid, data)))}


def _settle(backend: Backend, msgid: str, data: Mapping[str, Any]) -> Output:
    return {"setlinfo": _setlinfo(backend.medical.settle(_bill(msgid, data)))}


def _reverse(backend: Backend, msgid: str, data: Mapping[str, Any]) -> Output:
    original = fields.message_id(data, "omsgid")
    reversal = Reversal(msgid, original, fields.text(data, "certno"), fields.text(data, "memo", required=False))
    backend.medical.reverse(reversal)
    return {"omsgid": original, "setl_stas": SETL_STAS_CODES[OutcomeState.REVERSED]}


def _correct(backend: Backend, _msgid: str, data: Mapping[str, Any]) -> Output:
    original = fields.message_id(data, "omsgid")
    fields.name(data, "oinfno", (SETTLE,))
    backend.medical.correct(original)
    return {"omsgid": original, "setl_stas": SETL_STAS_CODES[backend.medical.outcome(original).state]}


def _outcome(backend: Backend, _msgid: str, data: Mapping[str, Any]) -> Output:
    original = fields.message_id(data, "omsgid")
    outcome = backend.medical.outcome(original)
    settlement = None if outcome.settlement is None else _setlinfo(outcome.settlement)
    return {"omsgid": original, "setl_stas": SETL_STAS_CODES[outcome.state], "setlinfo": settlement}


SERVICES: dict[str, Handler] = {
    protocol.FILE_REMOTE_CARE: _file,
    protocol.PRE_SETTLE: _pre_settle,
    SETTLE: _settle,
    protocol.REVERSE: _reverse,
    protocol.CORRECT: _correct,
    protocol.OUTCOME: _outcome,
}
