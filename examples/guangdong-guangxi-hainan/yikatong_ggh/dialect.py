"""The 粤桂琼 dialect's vocabulary, shared by the adapter (which speaks it) and the sandbox (which answers it).

Everything here is data: method names, header names, the JSON-RPC error codes, which of them are the region's
refusals (read both ways, with the hub SDK's :class:`~adapters.refusals.RefusalCodes`) and the code tables that
turn the region's letters and codes into the canonical domain's enums. :mod:`yikatong_ggh.codec` writes and reads
each object with them; :mod:`yikatong_ggh.sandbox` describes the protocol as a whole.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from adapters.domain import (
    CardAction,
    CardStatus,
    CatalogueClass,
    Delivery,
    FilingType,
    Gender,
    InsuranceType,
    OutcomeState,
    ReplaceReason,
    ServiceKind,
    Stage,
    VisitType,
)
from adapters.refusals import RefusalCodes

E = TypeVar("E", bound=enum.Enum)

PATH = "/rpc"
JSONRPC = "2.0"
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""Carries a write's message id (the hub's ``request_id``; a stand-in advice's ``advice_id``)."""
AUTHORIZATION_HEADER = "Authorization"
"""``Bearer <api_key>``: the channel key the region issued to the hub."""


class Method(enum.StrEnum):
    """Every method of the region's JSON-RPC endpoint."""

    PING = "system.ping"
    PERSON_EXISTS = "person.exists"
    CARD_GET = "card.get"
    CARD_APPLY = "card.apply"
    CARD_CHANGE = "card.change"
    CARD_REPLACE = "card.replace"
    CARD_PROGRESS = "card.progress"
    CARE_FILE = "care.file"
    BILL_PREVIEW = "bill.preview"
    BILL_SETTLE = "bill.settle"
    BILL_OUTCOME = "bill.outcome"
    BILL_CORRECT = "bill.correct"
    BILL_REVERSE = "bill.reverse"
    STANDIN_ADVISE = "standin.advise"


WRITES = frozenset(
    {
        Method.CARD_APPLY,
        Method.CARD_CHANGE,
        Method.CARD_REPLACE,
        Method.CARE_FILE,
        Method.BILL_SETTLE,
        Method.BILL_REVERSE,
        Method.STANDIN_ADVISE,
    }
)
"""Methods that must carry an ``Idempotency-Key``: the region deduplicates them on it."""

MEDICAL = frozenset(m for m in Method if m.value.startswith(("care.", "bill.")))
"""The medical-insurance system's methods (an answer delay scoped to settlement holds back only these)."""


class Code(enum.IntEnum):
    """JSON-RPC error codes: the specification's own (negative) and the region's business refusals (positive)."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602  # data: {"field": ...}
    INTERNAL_ERROR = -32603
    UNAUTHORIZED = -32001  # HTTP 401: no or wrong channel key
    SYSTEM_DOWN = -32050  # HTTP 503: nothing was processed
    SYSTEM_BUSY = -32051  # HTTP 503: nothing was processed
    CARD_NOT_FOUND = 1001
    HOLDER_MISMATCH = 1002
    HOLDER_NOT_FOUND = 1003
    APPLICATION_NOT_FOUND = 1004
    CARD_ALREADY_HELD = 1005
    CARD_STATE_CONFLICT = 1006  # data: {"op": <op code>, "status": <status letter>}
    NOT_INSURED = 2001
    SETTLEMENT_NOT_FOUND = 2002  # data: {"msg_id": ...}
    SETTLEMENT_NOT_SETTLED = 2003  # data: {"msg_id": ..., "state": <state letter>}
    SETTLEMENT_CORRECTED = 2004  # data: {"msg_id": ...}
    IDEMPOTENCY_KEY_REUSED = 3001  # data: {"request_id": ...}


REFUSALS: RefusalCodes[Code] = RefusalCodes(
    {
        "CARD_NOT_FOUND": Code.CARD_NOT_FOUND,
        "HOLDER_MISMATCH": Code.HOLDER_MISMATCH,
        "HOLDER_NOT_FOUND": Code.HOLDER_NOT_FOUND,
        "APPLICATION_NOT_FOUND": Code.APPLICATION_NOT_FOUND,
        "CARD_ALREADY_HELD": Code.CARD_ALREADY_HELD,
        "CARD_STATE_CONFLICT": Code.CARD_STATE_CONFLICT,
        "NOT_INSURED": Code.NOT_INSURED,
        "SETTLEMENT_NOT_FOUND": Code.SETTLEMENT_NOT_FOUND,
        "SETTLEMENT_NOT_SETTLED": Code.SETTLEMENT_NOT_SETTLED,
        "SETTLEMENT_CORRECTED": Code.SETTLEMENT_CORRECTED,
        "IDEMPOTENCY_KEY_REUSED": Code.IDEMPOTENCY_KEY_REUSED,
    }
)
"""The business error codes: the refusal each stands for (the sandbox answers with them, the adapter raises them)."""
UNAVAILABLE = frozenset({Code.SYSTEM_DOWN, Code.SYSTEM_BUSY})
"""Codes that say nothing was processed: the adapter raises ``RegionUnavailable``."""


# --- code tables: wire value → domain member --------------------------------------------------------------

CARD_STATUS: dict[str, CardStatus] = {
    "F": CardStatus.SEALED,  # 封存
    "Z": CardStatus.NORMAL,  # 正常
    "G": CardStatus.LOST,  # 挂失 (正式)
    "S": CardStatus.LOCKED,  # 锁定
    "L": CardStatus.TEMPORARILY_LOST,  # 临时挂失
    "X": CardStatus.CANCELLED,  # 注销
}
SETTLEMENT_STATE: dict[str, OutcomeState] = {
    "Y": OutcomeState.SETTLED,  # 已结算
    "C": OutcomeState.REVERSED,  # 已撤销
    "Z": OutcomeState.CORRECTED,  # 已冲正
    "N": OutcomeState.NOT_FOUND,  # 无此交易
}
GENDER: dict[str, Gender] = {"1": Gender.MALE, "2": Gender.FEMALE}  # GB/T 2261.1
INSURANCE_TYPE: dict[str, InsuranceType] = {
    "310": InsuranceType.EMPLOYEE,  # 职工基本医疗保险
    "390": InsuranceType.RESIDENT,  # 城乡居民基本医疗保险
}
VISIT_TYPE: dict[str, VisitType] = {"MZ": VisitType.OUTPATIENT, "ZY": VisitType.INPATIENT}  # 门诊, 住院
CATALOGUE_CLASS: dict[str, CatalogueClass] = {
    "A": CatalogueClass.A,  # 甲类
    "B": CatalogueClass.B,  # 乙类
    "C": CatalogueClass.C,  # 丙类
    "W": CatalogueClass.OUT_OF_CATALOGUE,  # 目录外
}
FILING_TYPE: dict[str, FilingType] = {
    "YDAZ": FilingType.RETIREE_RESETTLED,  # 异地安置退休
    "YDJZ": FilingType.LONG_TERM_RESIDENT,  # 异地长期居住
    "CZYD": FilingType.WORKING_AWAY,  # 常驻异地工作
    "ZZZY": FilingType.REFERRAL,  # 转诊转院
    "JZQJ": FilingType.EMERGENCY,  # 急诊抢救
    "QTLS": FilingType.TEMPORARY_OTHER,  # 其他临时外出
}
STAGE: dict[str, Stage] = {
    "01": Stage.SUBMITTED,  # 已受理
    "02": Stage.BANK_ACCOUNT_OPENED,  # 银行已开户
    "03": Stage.AT_CARD_FACTORY,  # 制卡中
    "04": Stage.KEYS_LOADED,  # 已写卡
    "05": Stage.READY_AT_OUTLET,  # 待领取
    "06": Stage.MAILED,  # 已寄出
    "07": Stage.ISSUED,  # 已发放
    "99": Stage.FAILED,  # 制卡失败
}
DELIVERY: dict[str, Delivery] = {"WD": Delivery.OUTLET, "YJ": Delivery.MAIL}  # 网点领取, 邮寄
REPLACE_REASON: dict[str, ReplaceReason] = {
    "GS": ReplaceReason.LOST,  # 挂失补卡
    "SH": ReplaceReason.DAMAGED,  # 损坏换卡
    "DQ": ReplaceReason.EXPIRED,  # 到期换卡
    "BG": ReplaceReason.INFORMATION_CHANGED,  # 信息变更
}
CARD_OP: dict[str, CardAction] = {"QY": CardAction.ENABLE, "LG": CardAction.REPORT_LOSS, "JG": CardAction.CANCEL_LOSS}
"""``card.change`` operations: 启用, 临时挂失, 解挂."""
REPLACE_OP = "BH"
"""The operation a ``CARD_STATE_CONFLICT`` names when a replacement (补换) was refused."""
SERVICE_KIND: dict[str, ServiceKind] = {
    "JT": ServiceKind.TRANSIT,  # 交通
    "TSG": ServiceKind.LIBRARY,  # 图书馆
    "BWG": ServiceKind.MUSEUM,  # 博物馆
    "JQ": ServiceKind.SCENIC_SPOT,  # 景区
    "GY": ServiceKind.PARK,  # 公园
}


def compact_date(date: str) -> str:
    """A domain date, ``YYYY-MM-DD``, as the wire writes it: ``YYYYMMDD``."""
    return date.replace("-", "")


def code_of(table: Mapping[str, E], member: E) -> str:
    """The wire code of a domain member in one of the tables above."""
    for code, value in table.items():
        if value is member:
            return code
    raise KeyError(f"{member!r} has no code on the 粤桂琼 wire")


def op_code(action_name: str) -> str:
    """The op code of a domain action name (``CardAction`` names, and ``REPLACE``)."""
    if action_name == "REPLACE":
        return REPLACE_OP
    return code_of(CARD_OP, CardAction[action_name])


def action_name(op: str) -> str:
    """The domain action name of an op code: the inverse of :func:`op_code`."""
    if op == REPLACE_OP:
        return "REPLACE"
    return CARD_OP[op].name
