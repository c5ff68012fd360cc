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
