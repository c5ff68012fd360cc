"""The adapter interface every region implements, built-in or partner's.

An adapter translates the canonical domain (``adapters.domain``) to one region's own protocol and back.
It takes and returns frozen dataclasses, never protobuf or HTTP objects, and raises only errors from
``adapters.errors``:

* a definite answer from the region that the request cannot be done → a :class:`~adapters.errors.Refusal`
  subclass (``CardNotFound``, ``HolderMismatch``, ``CardStateConflict``, ...);
* the region could not be reached → :class:`~adapters.errors.RegionUnavailable` (retryable);
* no answer within ``timeout`` → :class:`~adapters.errors.RegionTimeout` (may have reached the region);
* an unreadable answer → :class:`~adapters.errors.RegionProtocolError`.

Every write carries the caller's ``request_id``; the adapter sends it as the region's message id so the
region deduplicates a retried write.

Adapters are registered under the entry-point group ``yikatong.adapters``; the hub builds one instance per
configured region with :class:`AdapterSettings` and calls :meth:`RegionAdapter.start` before use.

Each method declares here, once, how the hub may retry it (:class:`RetryPolicy`, DESIGN §6); the hub reads the
declaration with :func:`retry_policy`. An adapter needs to do nothing about it.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from adapters.domain import (
    Application,
    ApplyCard,
    Bill,
    Card,
    CardCredential,
    CardRecord,
    ChangeCard,
    FileRemoteCare,
    Filing,
    RegionSettlement,
    ReplaceCard,
    Reversal,
    SettlementOutcome,
    Split,
    StandInAdvice,
)

F = TypeVar("F", bound=Callable[..., Any])


class RetryPolicy(enum.Enum):
    """When the hub may send a call to a region again after it failed (DESIGN §6)."""

    SAFE = "SAFE"
    """A read, or a write the region deduplicates on its message id: resend on any retryable failure."""
    NOT_REACHED = "NOT_REACHED"
    """Resend only when the failure provably happened before the request reached the region."""
    NEVER = "NEVER"
    """Never resend (health probes: the next probe asks again)."""


def retries(policy: RetryPolicy) -> Callable[[F], F]:
    """Declare a :class:`RegionAdapter` method's retry policy."""

    def declare(method: F) -> F:
        method.retry_policy = policy  # type: ignore[attr-defined]
        return method

    return declare


def retry_policy(method_name: str) -> RetryPolicy:
    """The retry policy :class:`RegionAdapter` declares for one of its methods."""
    policy = getattr(getattr(RegionAdapter, method_name), "retry_policy", None)
    if not isinstance(policy, RetryPolicy):
        raise LookupError(f"RegionAdapter.{method_name} declares no retry policy")
    return policy


@dataclass(frozen=True)
class AdapterSettings:
    """What the hub gives an adapter when it builds it.

    Attributes:
        region_id: the region's id, e.g. ``"yangtze-delta"``; used in every error the adapter raises.
        endpoint: where the region's back-end listens (``http://host:port`` or ``host:port`` for gRPC).
        options: adapter-specific settings from the region's configuration file (credentials, ids), references
            already resolved. By convention the TLS to the region is ``tls_ca`` (the CA bundle that vouches for
            the region's server certificate, PEM), ``tls_cert`` and ``tls_key`` (the hub's client certificate and
            key, PEM, where the region asks for one); :class:`adapters.tls.ClientTls` reads them.

    ``repr`` names the options but never shows their values: they hold secrets.
    """

    region_id: str
    endpoint: str
    options: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        options = {key: "***" for key in self.options}
        return f"AdapterSettings(region_id={self.region_id!r}, endpoint={self.endpoint!r}, options={options!r})"


class RegionAdapter(abc.ABC):
    """One region's back-end, spoken to in the region's own protocol.

    Every method takes ``timeout``: seconds the call may take in total, after which it raises
    :class:`~adapters.errors.RegionTimeout`.
    """

    def __init__(self, settings: AdapterSettings) -> None:
        self.settings = settings

    @property
    def region_id(self) -> str:
        """The id of the region this adapter speaks to."""
        return self.settings.region_id

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections. Called once before the first call."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Called once at shutdown."""

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def get_card(self, credential: CardCredential, *, timeout: float) -> CardRecord:
        """Look a card up with its holder and insurances, whatever its status.

        Raises:
            CardNotFound: the region issued no card with that number.
            HolderMismatch: the SSN, name or identification code does not belong to that card.
        """

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def knows_holder(self, social_security_number: str, *, timeout: float) -> bool:
        """Whether the region holds a record (card or application) of this person."""

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def apply_card(self, request: ApplyCard, *, timeout: float) -> Application:
        """申领: submit an application for a new card.

        Raises:
            HolderNotFound: the region has no record of the person.
            HolderMismatch: the name does not match the record.
            CardAlreadyHeld: the person already holds a card that is not cancelled.
        """

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def change_card(self, request: ChangeCard, *, timeout: float) -> Card:
        """Enable the social-security function, report a temporary loss, or cancel that report.

        Raises:
            CardStateConflict: the action is not allowed from the card's current status.
        """

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def replace_card(self, request: ReplaceCard, *, timeout: float) -> Application:
        """补换: cancel the card and start production of its replacement."""

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def get_application(self, social_security_number: str, holder_name: str, *, timeout: float) -> Application:
        """The person's latest application.

        Raises:
            ApplicationNotFound: the person has no application.
        """

    # --- medical settlement at the insured place (DESIGN §4.5) -----------------------------------------

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def file_remote_care(self, request: FileRemoteCare, *, timeout: float) -> Filing:
        """备案: record that the insured person will be treated in another area.

        Idempotent on ``request.request_id``.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            IdempotencyKeyReused: the request id was used for another filing.
        """

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def pre_settle(self, bill: Bill, *, timeout: float) -> Split:
        """预结算: the split the insured place's policy gives the bill now, with no side effects.

        Raises:
            NotInsured: the person has no medical insurance in this region.
        """

    @abc.abstractmethod
    @retries(RetryPolicy.NOT_REACHED)
    async def settle(self, bill: Bill, *, timeout: float) -> RegionSettlement:
        """结算: compute the split, add it to the person's accumulators and debit the personal account.

        Idempotent on ``bill.request_id``: the same id with the same bill replays the first settlement.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            SettlementCorrected: the request id was corrected before; it can never settle.
            IdempotencyKeyReused: the request id was used for another bill.
        """

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def settlement_outcome(self, request_id: str, *, timeout: float) -> SettlementOutcome:
        """What the region knows of a settlement request id; ``NOT_FOUND`` when it never saw it."""

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def correct_settlement(self, request_id: str, *, timeout: float) -> None:
        """冲正: void the settlement of ``request_id`` whether or not it was applied.

        Applied → its accumulators and account debit are restored; not seen → the id is marked so that a
        late arrival is refused with ``SettlementCorrected``. Repeating a correction is harmless.
        """

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def reverse_settlement(self, request: Reversal, *, timeout: float) -> None:
        """撤销: undo a settled bill once, restoring accumulators and account exactly.

        Idempotent on ``request.request_id``.

        Raises:
            SettlementNotFound: the region has no settlement of that request id.
            SettlementNotSettled: it was reversed or corrected already.
        """

    # --- resident services (DESIGN §4.7) ----------------------------------------------------------------

    @abc.abstractmethod
    @retries(RetryPolicy.SAFE)
    async def send_stand_in_advice(self, advice: StandInAdvice, *, timeout: float) -> None:
        """Tell the issuing region of a service granted in stand-in while it was unreachable.

        Idempotent on ``advice.advice_id``: the hub resends until the region acknowledges.

        Raises:
            RegionProtocolError: the region could not read the advice (it will not accept it as it is).
        """

    @abc.abstractmethod
    @retries(RetryPolicy.NEVER)
    async def check_health(self, *, timeout: float) -> None:
        """Return when the back-end answers; raise an ``AdapterError`` when it does not."""
