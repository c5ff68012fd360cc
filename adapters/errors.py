"""Errors of the federation, one tree with one root.

::

    YikatongError                     reason, message, metadata; retryable, may_have_reached
    ├── InvalidArgument               a request field is wrong (field named)
    ├── Refusal                       a definite "no" from a domain rule, at the hub or at a region
    │   ├── RegionNotFederated        no region serves the province
    │   ├── CardNotUsable             the card is not NORMAL (reason CARD_<STATUS>)
    │   ├── CardStateConflict         the requested status change is not allowed from the card's status
    │   ├── CardNotFound              the issuing region has no such card
    │   ├── HolderMismatch            the credential's fields do not belong together
    │   ├── HolderNotFound            no region knows the person
    │   ├── ApplicationNotFound       the person has no application
    │   ├── CardAlreadyHeld           the person already holds a usable card
    │   ├── IdempotencyKeyReused      same request_id, different request
    │   ├── RequestInProgress         same request_id while the first is still running
    │   ├── NotInsured                the person has no medical insurance
    │   ├── SettlementNotFound        no settlement with that id (or request id)
    │   ├── SettlementNotSettled      reversal of a settlement that is reversed, corrected or unknown
    │   ├── SettlementCorrected       the settlement's request id was corrected (冲正) and is void
    │   ├── SettlementOutcomeUnknown  the region did not say whether it settled; a correction is on its way
    │   └── PeriodNotClosable         the clearing period has not ended yet
    ├── ECardTokenRejected            an electronic card token is not accepted (UNAUTHENTICATED)
    │   ├── ECardKeyUnknown           signed under a key id the hub is not configured with
    │   ├── ECardSignatureInvalid     the signature does not match (tampered or forged)
    │   ├── ECardTokenExpired         past its expiry, or issued for longer than tokens may live
    │   ├── ECardTokenNotYetValid     issued in the future (beyond the clock-skew allowance)
    │   └── ECardTokenUsed            presented before: a token is good for one use
    ├── RegionNotAuthenticated        a region back-end's call (card event) without its valid token
    └── AdapterError                  trouble talking to a region
        ├── RegionBusy                the hub's bulkhead for the region is full; not sent
        ├── RegionUnavailable         did not reach the region; safe to retry
        │   └── CircuitOpen           the region's circuit is open; refused inside the hub
        ├── RegionTimeout             no answer in time; the request may have reached the region
        └── RegionProtocolError       the region answered something unreadable
            └── RegionSplitInvalid    the region's split breaks the §4.5 invariants

Retry logic reads ``retryable`` and ``may_have_reached``; it never lists classes. The hub maps every
class to a gRPC status code and ``ErrorInfo.reason`` in one table (``gateway.status``).
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.domain import CardStatus


class YikatongError(Exception):
    """Root of every error the federation raises on purpose.

    Attributes:
        reason: UPPER_SNAKE_CASE reason for ``google.rpc.ErrorInfo``.
        metadata: every dynamic value the message mentions, as strings.
        retryable: a retry of the same call could succeed.
        may_have_reached: the request may have reached the region (its outcome is unknown).
    """

    reason = "INTERNAL_ERROR"
    retryable = False
    may_have_reached = False

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(YikatongError):
    """A request field is missing or malformed."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", metadata={"field": field, "problem": problem})
        self.field = field


class Refusal(YikatongError):
    """A definite answer that the request cannot be done; retrying will not change it."""

    reason = "REFUSED"
    may_have_reached = True


class RegionNotFederated(Refusal):
    reason = "REGION_NOT_FEDERATED"

    def __init__(self, province: str) -> None:
        super().__init__(f"no federated region serves province {province}", metadata={"province": province})


class CardNotUsable(Refusal):
    """The card exists but its status forbids use; the reason names the status."""

    def __init__(self, status: CardStatus, card_number: str) -> None:
        super().__init__(f"card is {status.name}", metadata={"status": status.name, "card_number": card_number})
        self.status = status
        self.reason = f"CARD_{status.name}"


class CardStateConflict(Refusal):
    reason = "CARD_STATE_CONFLICT"

    def __init__(self, action: str, status: CardStatus) -> None:
        super().__init__(
            f"{action} is not allowed for a card that is {status.name}",
            metadata={"action": action, "status": status.name},
        )


class CardNotFound(Refusal):
    reason = "CARD_NOT_FOUND"


class HolderMismatch(Refusal):
    reason = "HOLDER_MISMATCH"


class HolderNotFound(Refusal):
    reason = "HOLDER_NOT_FOUND"


class ApplicationNotFound(Refusal):
    reason = "APPLICATION_NOT_FOUND"


class CardAlreadyHeld(Refusal):
    reason = "CARD_ALREADY_HELD"


class IdempotencyKeyReused(Refusal):
    reason = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"request_id {request_id} was used for a different request", metadata={"request_id": request_id}
        )


class RequestInProgress(Refusal):
    reason = "REQUEST_IN_PROGRESS"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"request_id {request_id} is still being processed", metadata={"request_id": request_id})


class AdapterError(YikatongError):
    """Trouble talking to a region. ``region`` is the region id."""

    reason = "REGION_ERROR"

    def __init__(self, region: str, message: str) -> None:
        super().__init__(f"region {region}: {message}", metadata={"region": region})
        self.region = region


class RegionUnavailable(AdapterError):
    """The request did not reach the region (connection refused, region down): safe to retry."""

    reason = "REGION_UNAVAILABLE"
    retryable = True


class CircuitOpen(RegionUnavailable):
    """The region's circuit breaker is open: the call was refused inside the hub, not sent."""

    reason = "REGION_CIRCUIT_OPEN"
    retryable = False


class RegionBusy(AdapterError):
    """Too many calls to the region are in flight: refused inside the hub rather than queued."""

    reason = "REGION_BUSY"


class RegionTimeout(AdapterError):
    """No answer within the deadline; the region may have acted on the request."""

    reason = "REGION_TIMEOUT"
    retryable = True
    may_have_reached = True


class RegionProtocolError(AdapterError):
    """The region answered, but not in its protocol (or reported an internal failure)."""

    reason = "REGION_PROTOCOL_ERROR"
    may_have_reached = True


class NotInsured(Refusal):
    reason = "NOT_INSURED"


class SettlementNotFound(Refusal):
    reason = "SETTLEMENT_NOT_FOUND"


class SettlementNotSettled(Refusal):
    """A reversal of a settlement that is not (or no longer) settled: reversal happens once."""

    reason = "SETTLEMENT_NOT_SETTLED"

    def __init__(self, settlement_id: str, state: str) -> None:
        super().__init__(
            f"settlement {settlement_id} is {state}, not SETTLED",
            metadata={"settlement_id": settlement_id, "state": state},
        )


class SettlementCorrected(Refusal):
    """The request id was corrected (冲正) at the region; that settlement is void for good."""

    reason = "SETTLEMENT_CORRECTED"


class SettlementOutcomeUnknown(Refusal):
    """The region did not confirm the settlement in time; the hub voids it through a correction.

    The bill is not settled: settle it again under a new request id.
    """

    reason = "SETTLEMENT_OUTCOME_UNKNOWN"

    def __init__(self, settlement_id: str, region: str) -> None:
        super().__init__(
            f"region {region} did not confirm settlement {settlement_id}; it is being corrected (voided)",
            metadata={"settlement_id": settlement_id, "region": region},
        )


class PeriodNotClosable(Refusal):
    reason = "PERIOD_NOT_CLOSABLE"

    def __init__(self, period: str, problem: str) -> None:
        super().__init__(f"clearing period {period} {problem}", metadata={"period": period})


class RegionSplitInvalid(RegionProtocolError):
    """The region returned a split that does not balance; it is refused and corrected, never booked."""

    reason = "REGION_SPLIT_INVALID"

    def __init__(self, region: str, violations: list[str]) -> None:
        super().__init__(region, "split breaks " + "; ".join(violations))
        self.metadata["violations"] = "; ".join(violations)


class ECardTokenRejected(YikatongError):
    """An electronic social security card token (DESIGN §4.8) is not accepted; the reason says why.

    Malformed tokens are :class:`InvalidArgument`; these are well-formed tokens that do not authenticate a card.
    """

    reason = "ECARD_TOKEN_REJECTED"


class ECardKeyUnknown(ECardTokenRejected):
    reason = "ECARD_KEY_UNKNOWN"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"e-card token key id {key_id!r} is not configured", metadata={"key_id": key_id})


class ECardSignatureInvalid(ECardTokenRejected):
    reason = "ECARD_SIGNATURE_INVALID"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"e-card token signature does not verify under key id {key_id!r}", metadata={"key_id": key_id})


class ECardTokenExpired(ECardTokenRejected):
    reason = "ECARD_TOKEN_EXPIRED"


class ECardTokenNotYetValid(ECardTokenRejected):
    reason = "ECARD_TOKEN_NOT_YET_VALID"


class ECardTokenUsed(ECardTokenRejected):
    reason = "ECARD_TOKEN_USED"

    def __init__(self, token_id: str) -> None:
        super().__init__(f"e-card token {token_id} was used before", metadata={"token_id": token_id})


class RegionNotAuthenticated(YikatongError):
    """A call meant for region back-ends (card events) without its region's valid token (UNAUTHENTICATED)."""

    reason = "REGION_TOKEN_INVALID"

    def __init__(self, region: str) -> None:
        super().__init__(f"no valid event token for region {region!r}", metadata={"region": region})
