"""What the 京津冀 adapter and the region's centres agree on beyond ``jingjinji.v1``'s messages: result codes, code
tables and the fixed forms of two refusals' messages.

The proto declares the messages and their fields; this module declares what travels in them: the ``Result``
codes (0 OK, 1000 bad input, the refusals from 1001, read both ways), the ``xzlx`` insurance codes, the proto
enums' members for each domain member (they carry the domain's names after their prefix:
``CATALOGUE_CLASS_B`` is ``CatalogueClass.B``) and the dates' ``YYYYMMDD``. The adapter
(:mod:`adapters.jingjinji.codec`) and the sandbox (:mod:`regions.jingjinji`) both import it; each reads what the
other wrote with its own checks.

Tables map the wire value to the domain member; ``*_CODES`` are the same tables the other way round.
"""

from __future__ import annotations

import re

from adapters.domain import (
    CardStatus,
    CatalogueClass,
    FilingType,
    InsuranceType,
    OutcomeState,
    ServiceKind,
    VisitType,
)
from adapters.refusals import RefusalCodes
from jingjinji.v1 import card_center_pb2 as pb
from jingjinji.v1 import medical_insurance_pb2 as mpb

# --- result codes -------------------------------------------------------------------------------------------

OK = 0
BAD_INPUT = 1000
RESULTS: RefusalCodes[int] = RefusalCodes(
    {
        "CARD_NOT_FOUND": 1001,
        "HOLDER_MISMATCH": 1002,
        "CARD_STATE_CONFLICT": 1003,  # message: action=<action> kzt=<kzt>: ...
        "HOLDER_NOT_FOUND": 1004,
        "APPLICATION_NOT_FOUND": 1005,
        "CARD_ALREADY_HELD": 1006,
        "IDEMPOTENCY_KEY_REUSED": 1009,
        "NOT_INSURED": 1010,
        "SETTLEMENT_NOT_FOUND": 1011,
        "SETTLEMENT_NOT_SETTLED": 1012,  # message: state=<state>: ...
        "SETTLEMENT_CORRECTED": 1013,
    }
)
"""The refusals' codes; the card centre and the medical-insurance centre share them."""

CONFLICT = re.compile(r"action=(?P<action>[A-Z_]+) kzt=(?P<kzt>\d+)")
NOT_SETTLED = re.compile(r"state=(?P<state>[A-Z_]+)")


def conflict_message(action: str, status: CardStatus, message: str) -> str:
    """A state conflict's message, in the fixed form a client rebuilds it from (:data:`CONFLICT`)."""
    return f"action={action} kzt={status.value}: {message}"


def not_settled_message(state: str, message: str) -> str:
    """A refused reversal's message, naming the settlement's state in the form of :data:`NOT_SETTLED`."""
    return f"state={state}: {message}"


# --- code tables --------------------------------------------------------------------------------------------


XZLX: dict[str, InsuranceType] = {"310": InsuranceType.EMPLOYEE, "390": InsuranceType.RESIDENT}
CATALOGUE_CLASSES = {mpb.CatalogueClass.Value(f"CATALOGUE_CLASS_{c.value}"): c for c in CatalogueClass}
VISIT_TYPES = {mpb.VisitType.Value(f"VISIT_TYPE_{v.value}"): v for v in VisitType}
FILING_TYPES = {mpb.FilingType.Value(f"FILING_TYPE_{f.value}"): f for f in FilingType}
SETTLEMENT_STATES = {mpb.SettlementState.Value(f"SETTLEMENT_STATE_{s.value}"): s for s in OutcomeState}
SERVICE_KINDS = {pb.ServiceKind.Value(f"SERVICE_KIND_{k.value}"): k for k in ServiceKind}
XZLX_CODES = {kind: code for code, kind in XZLX.items()}
CATALOGUE_CLASS_CODES = {kind: code for code, kind in CATALOGUE_CLASSES.items()}
VISIT_TYPE_CODES = {kind: code for code, kind in VISIT_TYPES.items()}
FILING_TYPE_CODES = {kind: code for code, kind in FILING_TYPES.items()}
SETTLEMENT_STATE_CODES = {state: code for code, state in SETTLEMENT_STATES.items()}
SERVICE_KIND_CODES = {kind: code for code, kind in SERVICE_KINDS.items()}


def wire_date(iso_date: str) -> str:
    """A domain date as this wire writes it: ``YYYY-MM-DD`` → ``YYYYMMDD``."""
    return iso_date.replace("-", "")
