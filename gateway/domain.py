"""The hub's own domain values, beside the adapter SDK's (``adapters.domain``): requests and answers of the
application services that no region sees. Frozen dataclasses; money in integer fen.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from adapters import domain


@dataclass(frozen=True)
class ECardToken:
    """An electronic card QR token presented instead of the card's fields; ``field`` names it in errors."""

    token: str
    field: str = "card.ecard_token"


PresentedCard = domain.CardCredential | ECardToken
"""What a caller presents for a card: its validated fields, or an e-card token standing for them."""

NO_CARD = domain.CardCredential("", "", "", "", "")
"""The credential of a write whose card is not known yet (an e-card token still to be verified)."""


class _Keyed(Protocol):
    @property
    def request_id(self) -> str: ...


W = TypeVar("W", bound=_Keyed)


@dataclass(frozen=True)
class CardWrite(Generic[W]):
    """A write that names a card, as the caller presented it: what idempotency fingerprints, so that a retry
    with the same e-card token replays the answer without presenting the (used) token again. ``request`` holds
    :data:`NO_CARD` until the card is known."""

    card: PresentedCard
    request: W

    @property
    def request_id(self) -> str:
        return self.request.request_id


@dataclass(frozen=True)
class RegionCard:
    """A card record and the region that issued the card."""

    region: str
    record: domain.CardRecord


@dataclass(frozen=True)
class RegionApplication:
    """An application and the region that handles it."""

    application: domain.Application
    region: str


@dataclass(frozen=True)
class FiledCare:
    """A filing (备案) and where the person is insured."""

    filing: domain.Filing
    insured_region: str
    insured_area: str


@dataclass(frozen=True)
class PreSettled:
    """The split the insured place would give a bill now."""

    split: domain.Split
    insured_area: str
    insured_region: str


@dataclass(frozen=True)
class ReverseRequest:
    """撤销 of a settlement; ``request_id`` is the reversal's own id."""

    request_id: str
    settlement_id: str
    reason: str


# --- clearing (DESIGN §4.6) -----------------------------------------------------------------------------------


class PeriodState(enum.Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


@dataclass(frozen=True)
class ClearingPair:
    """What the insured province owes the treatment province in a period."""

    insured_province: str
    treatment_province: str
    count: int
    fund_pay_fen: int


@dataclass(frozen=True)
class Position:
    """A province's or region's multilateral net position: owed as a treatment place less owed as insured."""

    name: str
    net_fen: int


@dataclass(frozen=True)
class ClearingReport:
    """A period's pair matrix and net positions; the nets sum to 0."""

    period: str
    state: PeriodState
    pairs: tuple[ClearingPair, ...]
    provinces: tuple[Position, ...]
    regions: tuple[Position, ...]
    count: int
    fund_pay_fen: int
    closed_at: str = ""  # RFC 3339, once closed


@dataclass(frozen=True)
class ClosePeriod:
    """Freeze a clearing period that has ended."""

    request_id: str
    period: str


@dataclass(frozen=True)
class ReconcileEntry:
    settlement_id: str
    fund_pay_fen: int


@dataclass(frozen=True)
class Reconciliation:
    """对账: a treatment area's own figures of one day, optionally per settlement."""

    treatment_area: str
    date: str  # YYYY-MM-DD, Beijing time
    count: int
    fund_pay_fen: int
    entries: tuple[ReconcileEntry, ...] = ()


@dataclass(frozen=True)
class ReconcileResult:
    matched: bool
    differing_settlement_ids: tuple[str, ...]
    count: int
    fund_pay_fen: int


# --- resident services (DESIGN §4.7) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Whether a card may use a resident service at a venue, and why."""

    authorized: bool
    reason: str
    issuing_region: str
    status: domain.CardStatus | None
    local: bool
    via_stand_in: bool = False
