"""What the 长三角 adapter and the region's server agree on: the endpoint, services, codes, refusals, amounts, times.

The adapter (:mod:`adapters.yangtze_delta.codec`, :mod:`adapters.yangtze_delta.client`) and the sandbox
(:mod:`regions.yangtze_delta`) both import this module, so that each code of the national-interface style wire is
written once. Each side still writes and reads its own messages with these codes: the sandbox checks what the
adapter sent with its own readers (``regions.yangtze_delta.fields``), and each converts amounts with its own code.

Code tables map the wire's code to the domain's member; ``*_CODES`` are the same tables the other way round.
"""

from __future__ import annotations

import datetime as dt

from adapters.domain import CatalogueClass, FilingType, InsuranceType, OutcomeState, Stage, VisitType
from adapters.refusals import RefusalCodes

PATH = "/fsi/api/rsfComIfsService/callService"
INFVER = "V1.0"

# --- services (``infno``) ------------------------------------------------------------------------------------

QUERY_CARD = "1101"
QUERY_PERSON = "1161"
APPLY = "2801"
CHANGE = "2802"
REPLACE = "2803"
PROGRESS = "2804"
FILE_REMOTE_CARE = "2501"
PRE_SETTLE = "2206"
SETTLE = "2207"  # also the only service a correction (2601) may name as ``oinfno``
REVERSE = "2208"
CORRECT = "2601"
OUTCOME = "5201"
HEARTBEAT = "9001"
STAND_IN_ADVICE = "9102"
MEDICAL = frozenset({FILE_REMOTE_CARE, PRE_SETTLE, SETTLE, REVERSE, CORRECT, OUTCOME})
"""The medical system's services (an answer delay scoped to settlement holds back only these)."""

# --- error codes (``err_code``) ------------------------------------------------------------------------------

BAD_INPUT = "BAD_INPUT"
FAULT_CODES = {"down": "SYSTEM_DOWN", "busy": "SYSTEM_BUSY"}
"""HTTP 503's ``err_code`` for each fault the system may be in: the request was not processed."""

ERR_CODES: RefusalCodes[str] = RefusalCodes(
    {
        "CARD_NOT_FOUND": "CARD_NOT_FOUND",
        "HOLDER_MISMATCH": "HOLDER_MISMATCH",
        "HOLDER_NOT_FOUND": "HOLDER_NOT_FOUND",
        "APPLICATION_NOT_FOUND": "APPLICATION_NOT_FOUND",
        "CARD_ALREADY_HELD": "CARD_ALREADY_HELD",
        "CARD_STATE_CONFLICT": "CARD_STATE_CONFLICT",  # output: action, card_stas
        "IDEMPOTENCY_KEY_REUSED": "MSGID_REUSED",
        "NOT_INSURED": "NOT_INSURED",
        "SETTLEMENT_NOT_FOUND": "SETTLEMENT_NOT_FOUND",
        "SETTLEMENT_NOT_SETTLED": "SETTLEMENT_NOT_SETTLED",  # output: omsgid, setl_stas
        "SETTLEMENT_CORRECTED": "SETTLEMENT_CORRECTED",
    }
)

# --- code tables ---------------------------------------------------------------------------------------------

INSUTYPES: dict[str, InsuranceType] = {"310": InsuranceType.EMPLOYEE, "390": InsuranceType.RESIDENT}
MAKE_STAS: dict[str, Stage] = {
    "01": Stage.SUBMITTED,
    "02": Stage.BANK_ACCOUNT_OPENED,
    "03": Stage.AT_CARD_FACTORY,
    "04": Stage.KEYS_LOADED,
    "05": Stage.READY_AT_OUTLET,
    "06": Stage.MAILED,
    "07": Stage.ISSUED,
    "99": Stage.FAILED,
}
CHRGITM_LV: dict[str, CatalogueClass] = {  # 甲类, 乙类, 丙类, out of catalogue
    "01": CatalogueClass.A,
    "02": CatalogueClass.B,
    "03": CatalogueClass.C,
    "04": CatalogueClass.OUT_OF_CATALOGUE,
}
MED_TYPE: dict[str, VisitType] = {"11": VisitType.OUTPATIENT, "21": VisitType.INPATIENT}
FIL_TYPE: dict[str, FilingType] = {  # long-term 1x, temporary 2x
    "11": FilingType.RETIREE_RESETTLED,
    "12": FilingType.LONG_TERM_RESIDENT,
    "13": FilingType.WORKING_AWAY,
    "21": FilingType.REFERRAL,
    "22": FilingType.EMERGENCY,
    "29": FilingType.TEMPORARY_OTHER,
}
SETL_STAS: dict[str, OutcomeState] = {
    "0": OutcomeState.NOT_FOUND,
    "1": OutcomeState.SETTLED,
    "2": OutcomeState.REVERSED,  # 撤销
    "3": OutcomeState.CORRECTED,  # 冲正
}
INSUTYPE_CODES = {kind: code for code, kind in INSUTYPES.items()}
MAKE_STAS_CODES = {stage: code for code, stage in MAKE_STAS.items()}
CHRGITM_LV_CODES = {kind: code for code, kind in CHRGITM_LV.items()}
MED_TYPE_CODES = {kind: code for code, kind in MED_TYPE.items()}
FIL_TYPE_CODES = {kind: code for code, kind in FIL_TYPE.items()}
SETL_STAS_CODES = {state: code for code, state in SETL_STAS.items()}
HOSPITAL_LEVELS = ("1", "2", "3")  # medins_lv
FLAG_VALUES = ("1", "0")  # yes, no


def flag(value: bool) -> str:
    """A yes/no flag as the wire writes it: ``"1"`` or ``"0"``."""
    return "1" if value else "0"


SPLIT_FIELDS: dict[str, str] = {
    "total_fen": "medfee_sumamt",
    "full_self_pay_fen": "fulamt_ownpay_amt",
    "over_cap_fen": "overlmt_selfpay",
    "b_class_self_pay_fen": "preselfpay_amt",
    "in_scope_fen": "inscp_scp_amt",
    "deductible_fen": "act_pay_dedc",
    "fund_pay_fen": "hifp_pay",
    "account_pay_fen": "acct_pay",
    "cash_pay_fen": "psn_cash_pay",
}
"""Each part of a :class:`~adapters.domain.Split` and its field in ``setlinfo``, a yuan amount."""

# Amounts travel as yuan strings with exactly two decimals (``"123.45"``). Each side converts them with its own
# code, integers only (``adapters.yangtze_delta.codec.yuan``, ``regions.yangtze_delta.fields.yuan``), as a real
# region and its adapter would: a sandbox that shared the adapter's converter could not catch its mistakes.

# --- times ---------------------------------------------------------------------------------------------------

BEIJING_TIME = dt.timezone(dt.timedelta(hours=8))
OPT_TIME = "%Y-%m-%d %H:%M:%S"
"""The layout of ``opt_time`` (and ``sys_time``): Beijing wall-clock time to the second."""
