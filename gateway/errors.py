"""Errors only the hub raises, under the SDK's root (``adapters.errors``), so partners see only theirs.

::

    YikatongError (adapters.errors)
    ├── Refusal (adapters.errors)
    │   ├── RegionNotFederated        no region serves the province
    │   ├── CardNotUsable             the card is not NORMAL (reason CARD_<STATUS>)
    │   ├── RequestInProgress         same request_id while the first is still running
    │   └── PeriodNotClosable         the clearing period has not ended yet
    ├── SettlementOutcomeUnknown      the region did not say whether it settled; a correction is on its way
    ├── CorrectionPending             a correction or reversal for the person is still owed to the region
    ├── ECardTokenRejected            an electronic card token is not accepted (UNAUTHENTICATED)
    │   ├── ECardKeyUnknown           signed under a key id the hub is not configured with
    │   ├── ECardSignatureInvalid     the signature does not match (tampered or forged)
    │   ├── ECardTokenExpired         past its expiry, or issued for longer than tokens may live
    │   ├── ECardTokenNotYetValid     issued in the future (beyond the clock-skew allowance)
    │   └── ECardTokenUsed            presented before: a token is good for one use
    ├── CallerUnknown                 the certificate names no participant of the federation (UNAUTHENTICATED)
    ├── CallerNotAuthorized           the method is not among the caller's roles' (PERMISSION_DENIED)
    ├── CallerOutOfScope              an area, institution or settlement that is not the caller's (PERMISSION_DENIED)
    ├── CallerRateLimited             the caller's rate limit is spent; retry after the delay given
    ├── RequestTooLarge               the request is over the server's receive limit (RESOURCE_EXHAUSTED)
    ├── NotSupported                  a feature this hub does not offer
    ├── LedgerUnavailable             the ledger could not be read or written; retry later
    ├── StoredRefusal                 a refusal replayed from an idempotency record
    └── AdapterError (adapters.errors)
        ├── RegionBusy                the hub's bulkhead for the region is full; not sent
        ├── DirectoryBusy             too many holder look-ups fan out to the regions at once; not sent
        └── RegionUnavailable (adapters.errors)
            └── CircuitOpen           the region's circuit is open; refused inside the hub

``gateway.api.status`` maps each class to a gRPC status code.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.domain import CardStatus
from adapters.errors import AdapterError, Refusal, RegionUnavailable, YikatongError


class RegionNotFederated(Refusal):
    reason = "REGION_NOT_FEDERATED"

    def __init__(self, province: str) -> None:
        super().__init__(f"no federated region serves province {province}", metadata={"province": province})


class CardNotUsable(Refusal):
    """The card exists but its status forbids use; the reason names the status (DESIGN §4.3)."""

    def __init__(self, status: CardStatus, card_number: str) -> None:
        super().__init__(f"card is {status.name}", metadata={"status": status.name, "card_number": card_number})
        self.status = status
        self.reason = f"CARD_{status.name}"


class RequestInProgress(Refusal):
    reason = "REQUEST_IN_PROGRESS"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"request_id {request_id} is still being processed", metadata={"request_id": request_id})


class PeriodNotClosable(Refusal):
    reason = "PERIOD_NOT_CLOSABLE"

    def __init__(self, period: str, problem: str) -> None:
        super().__init__(f"clearing period {period} {problem}", metadata={"period": period})


class SettlementOutcomeUnknown(YikatongError):
    """The region did not confirm the settlement in time; the hub voids it through a correction.

    The bill is not settled: settle it again under a new request id.
    """

    reason = "SETTLEMENT_OUTCOME_UNKNOWN"
    definite = True  # the hub voided the request id: a retry with it gets this answer again

    def __init__(self, settlement_id: str, region: str) -> None:
        super().__init__(
            f"region {region} did not confirm settlement {settlement_id}; it is being corrected (voided)",
            metadata={"settlement_id": settlement_id, "region": region},
        )


class CorrectionPending(YikatongError):
    """The region still has a correction or reversal coming for the person, and it could not be delivered now:
    a new settlement would be priced on accumulators that still hold it. Retry once the region is back."""

    reason = "CORRECTION_PENDING"
    retryable = True

    def __init__(self, region: str) -> None:
        super().__init__(
            f"a correction for this person is still owed to region {region}, which cannot be reached now; "
            "the bill is not settled, try again later",
            metadata={"region": region},
        )


class ECardTokenRejected(YikatongError):
    """An electronic social security card token (DESIGN §4.8) is not accepted; the reason says why.

    Malformed tokens are :class:`~adapters.errors.InvalidArgument`; these are well-formed tokens that do not
    authenticate a card.
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


class CallerUnknown(YikatongError):
    """The caller's certificate is genuine but names no participant in force (or none at all)."""

    reason = "CALLER_UNKNOWN"

    def __init__(self, participant: str) -> None:
        super().__init__(
            f"the certificate names no participant of the federation ({participant or 'none'})",
            metadata={"participant": participant},
        )


class CallerNotAuthorized(YikatongError):
    """The method is not among those of the caller's roles (DESIGN §10)."""

    reason = "CALLER_NOT_AUTHORIZED"

    def __init__(self, participant: str, method: str) -> None:
        super().__init__(
            f"participant {participant} may not call {method}", metadata={"participant": participant, "method": method}
        )


class CallerOutOfScope(YikatongError):
    """The request names an area, institution or settlement outside the caller's scope."""

    reason = "CALLER_OUT_OF_SCOPE"

    def __init__(self, participant: str, field: str, value: str) -> None:
        super().__init__(
            f"{field} {value} is outside the scope of participant {participant}",
            metadata={"participant": participant, "field": field, "value": value},
        )


class CallerRateLimited(YikatongError):
    """The caller's token bucket is empty; ``retry_after_seconds`` says when one call will be let through."""

    reason = "CALLER_RATE_LIMITED"
    retryable = True

    def __init__(self, participant: str, retry_after_seconds: float) -> None:
        super().__init__(
            f"participant {participant} is over its rate limit; retry in {retry_after_seconds:.3f} s",
            metadata={"participant": participant, "retry_after_seconds": f"{retry_after_seconds:.3f}"},
        )
        self.retry_after_seconds = retry_after_seconds


class RequestTooLarge(YikatongError):
    """The request's encoded size is over ``max_receive_message_bytes``."""

    reason = "REQUEST_TOO_LARGE"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the request is {size} bytes, over the limit of {limit}", metadata={"size": str(size), "limit": str(limit)}
        )


class NotSupported(YikatongError):
    """A request uses a feature this hub does not offer."""

    reason = "NOT_SUPPORTED"


class LedgerUnavailable(YikatongError):
    """The ledger could not be read or written (locked, corrupt, disk full, connection lost): what was asked is not
    recorded. Retry with the same request id: a settlement a region made meanwhile is found and booked, never made
    twice."""

    reason = "LEDGER_UNAVAILABLE"
    retryable = True

    def __init__(self, problem: str) -> None:
        super().__init__(f"the ledger is unavailable: {problem}", metadata={"problem": problem})


class StoredRefusal(YikatongError):
    """A refusal replayed from an idempotency record; it answers as the error it was first (``origin``)."""

    def __init__(self, origin: type[YikatongError], reason: str, message: str, metadata: Mapping[str, str]) -> None:
        super().__init__(message, metadata=metadata)
        self.origin, self.reason = origin, reason


class RegionBusy(AdapterError):
    """Too many calls to the region are in flight: refused inside the hub rather than queued."""

    reason = "REGION_BUSY"
    outcome = "bulkhead_full"
    breaker_failure = False


class DirectoryBusy(AdapterError):
    """Too many SSN-only look-ups are fanning out to the regions; refused rather than queued."""

    reason = "DIRECTORY_BUSY"
    outcome = "bulkhead_full"

    def __init__(self, limit: int) -> None:
        super().__init__("all", f"{limit} holder look-ups are asking the regions already; retry shortly")
        self.retryable = True


class CircuitOpen(RegionUnavailable):
    """The region's circuit breaker is open: the call was refused inside the hub, not sent."""

    reason = "REGION_CIRCUIT_OPEN"
    outcome = "circuit_open"
    retryable = False
    breaker_failure = False


def error_class(name: str) -> type[YikatongError]:
    """The error class of that name (of the SDK's or the hub's tree), for replaying a stored refusal."""
    pending: list[type[YikatongError]] = [YikatongError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return YikatongError
