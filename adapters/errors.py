"""Errors an adapter may raise, one tree with one root (the hub adds its own under the same root, ``gateway.errors``).

::

    YikatongError                     reason, message, metadata; outcome, retryable, may_have_reached, breaker_failure,
                                      answered, definite
    ├── InvalidArgument               a request field is wrong (field named)
    ├── Refusal                       a definite "no" from a domain rule at a region: nothing was done
    │   ├── CardStateConflict         the requested status change is not allowed from the card's status
    │   ├── CardNotFound              the issuing region has no such card
    │   ├── HolderMismatch            the credential's fields do not belong together
    │   ├── HolderNotFound            no region knows the person
    │   ├── ApplicationNotFound       the person has no application
    │   ├── CardAlreadyHeld           the person already holds a usable card
    │   ├── IdempotencyKeyReused      same request_id, different request
    │   ├── NotInsured                the person has no medical insurance
    │   ├── SettlementNotFound        no settlement with that id (or request id)
    │   ├── SettlementNotSettled      reversal of a settlement that is reversed, corrected or unknown
    │   └── SettlementCorrected       the settlement's request id was corrected (冲正) and is void
    └── AdapterError                  trouble talking to a region
        ├── RegionUnavailable         could not take the request; retryable (reached it only when provable)
        ├── RegionTimeout             no answer in time; the request may have reached the region
        └── RegionProtocolError       the region answered something unreadable
            └── RegionSplitInvalid    the region's split breaks the §4.5 invariants

An error's behaviour is data on its class, read by the hub's guard, retry and settlement logic — never a list of
classes:

=====================  ======================================================================================
attribute              meaning
=====================  ======================================================================================
``outcome``            the label of ``yikatong_region_requests_total{outcome}`` for a call that ended with it
``retryable``          the same call could succeed when sent again
``may_have_reached``   the region may have acted on the request and its outcome is unknown (a refusal is known)
``breaker_failure``    the region failed to answer: counts against its circuit breaker
``answered``           the region answered (a refusal, or a reply the hub cannot read): it takes calls
``definite``           the answer is final for the request id: a retry with the same id gets it again
=====================  ======================================================================================

The hub maps every class to a gRPC status code and ``ErrorInfo.reason`` in one table (``gateway.api.status``).
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.domain import CardStatus


class YikatongError(Exception):
    """Root of every error the federation raises on purpose.

    Attributes:
        reason: UPPER_SNAKE_CASE reason for ``google.rpc.ErrorInfo``.
        metadata: every dynamic value the message mentions, as strings.
        outcome: the outcome label of a region call that ended with this error.
        retryable: a retry of the same call could succeed.
        may_have_reached: the request may have reached the region and its outcome is unknown.
        breaker_failure: the region failed to answer (counts against its circuit breaker).
        answered: the region answered the call (it takes calls; the trouble is with this request).
        definite: the answer is final for the request id; idempotency replays it to a retry with the same id.
    """

    reason = "INTERNAL_ERROR"
    outcome = "error"
    retryable = False
    may_have_reached = False
    breaker_failure = False
    answered = False
    definite = False

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(YikatongError):
    """A request field is missing or malformed."""

    reason = "INVALID_ARGUMENT"
    outcome = "invalid"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", metadata={"field": field, "problem": problem})
        self.field = field


class Refusal(YikatongError):
    """A definite answer that the request cannot be done; retrying will not change it."""

    reason = "REFUSED"
    outcome = "refused"
    answered = True
    definite = True


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


class AdapterError(YikatongError):
    """Trouble talking to a region. ``region`` is the region id."""

    reason = "REGION_ERROR"
    outcome = "protocol_error"
    breaker_failure = True

    def __init__(self, region: str, message: str) -> None:
        super().__init__(f"region {region}: {message}", metadata={"region": region})
        self.region = region


class RegionUnavailable(AdapterError):
    """The region could not take the request: retryable.

    ``may_have_reached`` is False only when that is provable — the connection was refused or never made, so the
    request was never written. A region that answers "down" or "busy" (HTTP 503, gRPC ``UNAVAILABLE``) or a
    connection lost mid-call may have got the request: pass ``may_have_reached=True``, and the hub asks for the
    outcome of a settlement instead of dropping it.
    """

    reason = "REGION_UNAVAILABLE"
    outcome = "unavailable"
    retryable = True

    def __init__(self, region: str, message: str, *, may_have_reached: bool = False) -> None:
        super().__init__(region, message)
        self.may_have_reached = may_have_reached


class RegionTimeout(AdapterError):
    """No answer within the deadline; the region may have acted on the request."""

    reason = "REGION_TIMEOUT"
    outcome = "timeout"
    retryable = True
    may_have_reached = True


class RegionProtocolError(AdapterError):
    """The region answered, but not in its protocol (or reported an internal failure)."""

    reason = "REGION_PROTOCOL_ERROR"
    may_have_reached = True
    answered = True


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


class RegionSplitInvalid(RegionProtocolError):
    """The region returned a split that does not balance; it is refused and corrected, never booked."""

    reason = "REGION_SPLIT_INVALID"

    def __init__(self, region: str, violations: list[str]) -> None:
        super().__init__(region, "split breaks " + "; ".join(violations))
        self.metadata["violations"] = "; ".join(violations)
