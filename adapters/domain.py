"""The canonical domain: frozen dataclasses every layer between the wire and the regions works on.

Only the hub's codec turns these into protobuf, and only an adapter's client turns them into its
region's protocol.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CardStatus(enum.Enum):
    """Card status codes of the card-management systems (DESIGN §4.3)."""

    SEALED = 0
    NORMAL = 1
    LOST = 2
    LOCKED = 3
    TEMPORARILY_LOST = 4
    CANCELLED = 9


class Gender(enum.Enum):
    MALE = "1"
    FEMALE = "2"


class InsuranceType(enum.Enum):
    EMPLOYEE = "EMPLOYEE"
    RESIDENT = "RESIDENT"


class Stage(enum.Enum):
    """Stages of a card application (DESIGN §4.4)."""

    SUBMITTED = "SUBMITTED"
    BANK_ACCOUNT_OPENED = "BANK_ACCOUNT_OPENED"
    AT_CARD_FACTORY = "AT_CARD_FACTORY"
    KEYS_LOADED = "KEYS_LOADED"
    READY_AT_OUTLET = "READY_AT_OUTLET"
    MAILED = "MAILED"
    ISSUED = "ISSUED"
    FAILED = "FAILED"


class Delivery(enum.Enum):
    OUTLET = "OUTLET"
    MAIL = "MAIL"


class ReplaceReason(enum.Enum):
    LOST = "LOST"
    DAMAGED = "DAMAGED"
    EXPIRED = "EXPIRED"
    INFORMATION_CHANGED = "INFORMATION_CHANGED"


class CardAction(enum.Enum):
    """Status changes a holder can ask for through the hub."""

    ENABLE = "ENABLE"
    REPORT_LOSS = "REPORT_LOSS"
    CANCEL_LOSS = "CANCEL_LOSS"


@dataclass(frozen=True)
class CardCredential:
    """A validated card credential: every field normalised, the issuing area always known."""

    social_security_number: str
    card_number: str
    card_identification_code: str
    issuing_area: str
    holder_name: str


@dataclass(frozen=True)
class Card:
    card_number: str
    card_identification_code: str
    issuing_area: str
    status: CardStatus
    generation: int
    valid_until: str  # YYYY-MM-DD


@dataclass(frozen=True)
class Holder:
    social_security_number: str
    name: str
    gender: Gender
    birth_date: str  # YYYY-MM-DD


@dataclass(frozen=True)
class Insurance:
    insured_area: str
    insurance_type: InsuranceType


@dataclass(frozen=True)
class CardRecord:
    """What a region knows of a card: the card, its holder and the holder's insurances."""

    holder: Holder
    card: Card
    insurances: tuple[Insurance, ...] = ()


@dataclass(frozen=True)
class StageEvent:
    stage: Stage
    at: str  # RFC 3339


@dataclass(frozen=True)
class Application:
    application_id: str
    stage: Stage
    history: tuple[StageEvent, ...]
    failure_reason: str = ""
    card: Card | None = None


@dataclass(frozen=True)
class ApplyCard:
    """申领: a request for a new card, identified by SSN and name."""

    request_id: str
    social_security_number: str
    holder_name: str
    insured_area: str
    delivery: Delivery = Delivery.OUTLET
    delivery_area: str = ""


@dataclass(frozen=True)
class ChangeCard:
    """A status change (enable, report loss, cancel loss report) of one card."""

    request_id: str
    credential: CardCredential
    action: CardAction


@dataclass(frozen=True)
class ReplaceCard:
    """补换: the old card is cancelled and a replacement goes into production."""

    request_id: str
    credential: CardCredential
    reason: ReplaceReason


# --- medical settlement (DESIGN §4.5) ---------------------------------------------------------------------


class VisitType(enum.Enum):
    OUTPATIENT = "OUTPATIENT"
    INPATIENT = "INPATIENT"


class CatalogueClass(enum.Enum):
    """How the treatment place's catalogue classes a bill line."""

    A = "A"  # 甲类: fully in scope
    B = "B"  # 乙类: a share is paid by the patient first
    C = "C"  # 丙类: paid by the patient
    OUT_OF_CATALOGUE = "OUT_OF_CATALOGUE"


class FilingType(enum.Enum):
    """备案 types; the first three are long-term, the rest temporary."""

    RETIREE_RESETTLED = "RETIREE_RESETTLED"
    LONG_TERM_RESIDENT = "LONG_TERM_RESIDENT"
    WORKING_AWAY = "WORKING_AWAY"
    REFERRAL = "REFERRAL"
    EMERGENCY = "EMERGENCY"
    TEMPORARY_OTHER = "TEMPORARY_OTHER"

    @property
    def long_term(self) -> bool:
        return self in (FilingType.RETIREE_RESETTLED, FilingType.LONG_TERM_RESIDENT, FilingType.WORKING_AWAY)


@dataclass(frozen=True)
class FileRemoteCare:
    """备案: the insured person will be treated in ``treatment_area`` (a province when it ends in ``0000``)."""

    request_id: str
    credential: CardCredential
    treatment_area: str
    filing_type: FilingType
    valid_from: str  # YYYY-MM-DD
    valid_until: str  # YYYY-MM-DD


@dataclass(frozen=True)
class Filing:
    filing_id: str
    treatment_area: str
    filing_type: FilingType
    valid_from: str
    valid_until: str


@dataclass(frozen=True)
class BillLine:
    """One line of a hospital bill, classed against the treatment place's catalogue; ``price_cap_fen`` 0 = none."""

    item_code: str
    item_name: str
    catalogue_class: CatalogueClass
    quantity: int
    unit_price_fen: int
    amount_fen: int
    price_cap_fen: int = 0


@dataclass(frozen=True)
class Bill:
    """A bill to settle (or pre-settle) at the insured place.

    ``request_id`` is the hub's settlement request id; the region keys the settlement, its outcome query and
    its correction on it.
    """

    request_id: str
    credential: CardCredential
    insured_area: str
    treatment_area: str
    institution_id: str
    hospital_level: int  # 1, 2 or 3
    visit_type: VisitType
    later_admission: bool
    lines: tuple[BillLine, ...]
    use_personal_account: bool


@dataclass(frozen=True)
class Split:
    """How a bill is paid (DESIGN §4.5), every part in fen."""

    total_fen: int
    full_self_pay_fen: int
    over_cap_fen: int
    b_class_self_pay_fen: int
    in_scope_fen: int
    deductible_fen: int
    fund_pay_fen: int
    account_pay_fen: int
    cash_pay_fen: int

    def violations(self) -> list[str]:
        """The §4.5 invariants this split breaks; empty when it balances."""
        broken = [f"{name} < 0" for name, value in vars(self).items() if value < 0]
        classes = self.full_self_pay_fen + self.over_cap_fen + self.b_class_self_pay_fen + self.in_scope_fen
        if self.total_fen != classes:
            broken.append("total != full_self_pay + over_cap + b_class_self_pay + in_scope")
        if self.total_fen != self.fund_pay_fen + self.account_pay_fen + self.cash_pay_fen:
            broken.append("total != fund_pay + account_pay + cash_pay")
        if self.deductible_fen > self.in_scope_fen:
            broken.append("deductible > in_scope")
        return broken


@dataclass(frozen=True)
class RegionSettlement:
    """A settlement as the insured place's system booked it."""

    request_id: str
    region_settlement_id: str
    split: Split


class OutcomeState(enum.Enum):
    """What the insured place's system knows of a settlement request id."""

    SETTLED = "SETTLED"
    REVERSED = "REVERSED"
    CORRECTED = "CORRECTED"  # 冲正: voided, never took effect (or undone)
    NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True)
class SettlementOutcome:
    state: OutcomeState
    settlement: RegionSettlement | None = None


@dataclass(frozen=True)
class Reversal:
    """撤销 of a settled bill, once; ``request_id`` is the reversal's own id."""

    request_id: str
    settlement_request_id: str
    social_security_number: str
    reason: str


# --- resident services (DESIGN §4.7) -----------------------------------------------------------------------


class ServiceKind(enum.Enum):
    """Resident services (同城待遇) a card opens at local terms where an agreement says so."""

    TRANSIT = "TRANSIT"
    LIBRARY = "LIBRARY"
    MUSEUM = "MUSEUM"
    SCENIC_SPOT = "SCENIC_SPOT"
    PARK = "PARK"


@dataclass(frozen=True)
class StandInAdvice:
    """A resident service the hub granted on a cached status while the issuing region was unreachable.

    The hub delivers it to the issuing region once the region is back; ``advice_id`` makes delivery idempotent.
    """

    advice_id: str
    card_number: str
    issuing_area: str
    service_kind: ServiceKind
    venue_area: str
    granted_at: str  # RFC 3339
    status_confirmed_at: str  # RFC 3339: when the region last confirmed the NORMAL status used


@dataclass(frozen=True)
class CardEvent:
    """A card's status changed at its issuing region (published by the region to the hub)."""

    event_id: str
    region: str
    card_number: str
    issuing_area: str
    status: CardStatus
    social_security_number: str = ""
