"""Who is calling and what they may call (DESIGN §10): identity, the one role → RPC table, and rate limits.

* :class:`IdentityInterceptor` — over mutual TLS, the participant is the one the client certificate names in its
  URI SAN ``spiffe://yikatong/participant/<id>`` (grpc's ``peer_spiffe_id``); a genuine certificate that names
  no participant in force is ``UNAUTHENTICATED`` / ``CALLER_UNKNOWN`` (certificates of another CA, expired ones or
  none at all never get past the TLS handshake). On a plaintext loopback listener every caller is the built-in
  ``dev`` participant. The client's own ``x-caller-id`` is only ever a hint in the access log.
* :class:`AuthorizationInterceptor` — :data:`ROLE_METHODS` is the only statement of which role may call which
  RPC; a method outside the caller's roles is ``PERMISSION_DENIED`` / ``CALLER_NOT_AUTHORIZED``. Scope — areas,
  institutions, whose settlement — is checked by the services, which see what the request names.
* :class:`RateLimitInterceptor` — a token bucket per participant with a limit; an empty bucket is
  ``RESOURCE_EXHAUSTED`` / ``CALLER_RATE_LIMITED`` with a ``google.rpc.RetryInfo``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from gateway.api.interceptors import Context, Handler
from gateway.errors import CallerNotAuthorized, CallerOutOfScope, CallerRateLimited, CallerUnknown
from gateway.metrics import Metrics
from gateway.participants import DEV, Participant, Participants, RateLimit
from gateway.pki import URI_PREFIX
from gateway.services.audit import Auditor
from gateway.services.call import Call

_CARD = "/yikatong.v1.CardService/"
_AFFAIRS = "/yikatong.v1.CardAffairsService/"
_SETTLE = "/yikatong.v1.MedicalSettlementService/"
_CLEARING = "/yikatong.v1.ClearingService/"

ROLE_METHODS: Mapping[str, frozenset[str]] = {
    "hospital": frozenset(
        {
            _CARD + "VerifyCard",
            _CARD + "GetCardStatus",
            _SETTLE + "FileRemoteCare",
            _SETTLE + "PreSettle",
            _SETTLE + "Settle",
            _SETTLE + "GetSettlement",
            _SETTLE + "ReverseSettlement",
            _CLEARING + "Reconcile",
        }
    ),
    "card-service": frozenset(
        {
            _AFFAIRS + "ApplyCard",
            _AFFAIRS + "EnableSocialSecurity",
            _AFFAIRS + "ReplaceCard",
            _AFFAIRS + "ReportLoss",
            _AFFAIRS + "CancelLossReport",
            _AFFAIRS + "GetApplicationProgress",
            _CARD + "GetCardStatus",
            _CARD + "VerifyCard",
        }
    ),
    "venue": frozenset({_CARD + "VerifyCard", "/yikatong.v1.ResidentService/AuthorizeService"}),
    "region": frozenset({"/yikatong.v1.RegionEventService/PublishCardEvent"}),
    "clearing": frozenset(
        {
            _CLEARING + "GetClearingReport",
            _CLEARING + "CloseClearingPeriod",
            _CLEARING + "Reconcile",
            _SETTLE + "GetSettlement",
        }
    ),
    "operator": frozenset({"/yikatong.v1.FederationService/ListRegions", _CLEARING + "GetClearingReport"}),
}
"""Role → the RPCs it may call (DESIGN §10). Health and reflection are open to any authenticated caller."""

WRITES = frozenset(
    {
        _AFFAIRS + "ApplyCard",
        _AFFAIRS + "EnableSocialSecurity",
        _AFFAIRS + "ReplaceCard",
        _AFFAIRS + "ReportLoss",
        _AFFAIRS + "CancelLossReport",
        _SETTLE + "FileRemoteCare",
        _SETTLE + "Settle",
        _SETTLE + "ReverseSettlement",
        _CLEARING + "CloseClearingPeriod",
        "/yikatong.v1.RegionEventService/PublishCardEvent",
    }
)
"""The RPCs that change state: a refusal of one by authorization or scope is recorded in the audit chain."""


def may_call(participant: Participant, method: str) -> bool:
    """Whether one of the participant's roles may call the method."""
    return any(method in ROLE_METHODS.get(role, ()) for role in participant.roles)


def peer_participant(context: Context) -> str:
    """The participant id the client certificate names ("" when it names none).

    The peer's identities are its certificate's subject alternative names (``peer_identities``), read alone:
    ``auth_context()`` would copy the whole certificate into Python on every call.
    """
    for uri in context.peer_identities() or ():
        text = uri.decode("ascii", "replace") if isinstance(uri, bytes) else str(uri)
        if text.startswith(URI_PREFIX):
            return text[len(URI_PREFIX) :][:64]
    return ""


class IdentityInterceptor:
    """Names the call's participant (module docstring).

    Args:
        participants: returns the participants in force (swapped whole on reload).
        secure: whether the listener is mutual TLS; without it every caller is ``dev``.
    """

    def __init__(self, participants: Callable[[], Participants], *, secure: bool) -> None:
        self.participants, self.secure = participants, secure

    def wrap(self, method: str, proceed: Handler) -> Handler:
        if not self.secure:

            async def as_dev(request: Any, context: Context, call: Call) -> Any:
                call.caller = DEV
                return await proceed(request, context, call)

            return as_dev

        async def identify(request: Any, context: Context, call: Call) -> Any:
            named = peer_participant(context)
            participant = self.participants().get(named) if named else None
            if participant is None:
                raise CallerUnknown(named)
            call.caller = participant
            return await proceed(request, context, call)

        return identify


class AuthorizationInterceptor:
    """Refuses a method outside the caller's roles and counts every decision; a write refused here or for its
    scope (further in) is recorded in the audit chain."""

    def __init__(self, metrics: Metrics, auditor: Auditor) -> None:
        self.metrics, self.auditor = metrics, auditor

    def wrap(self, method: str, proceed: Handler) -> Handler:
        name = method.rsplit("/", 1)[-1]
        decisions = self.metrics.authz_decisions
        write = method in WRITES

        async def authorize(request: Any, context: Context, call: Call) -> Any:
            try:
                if not may_call(call.caller, method):
                    decisions.labels(call.caller.id, name, "denied").inc()
                    raise CallerNotAuthorized(call.caller.id, name)
                decisions.labels(call.caller.id, name, "allowed").inc()
                return await proceed(request, context, call)
            except (CallerNotAuthorized, CallerOutOfScope) as refused:
                if write:
                    objects = {"field": refused.metadata.get("field", "")}
                    await self.auditor.append(self.auditor.entry(call, "REFUSED", refused.reason, objects=objects))
                raise

        return authorize


class TokenBucket:
    """``rate.per_second`` tokens a second, at most ``rate.burst`` saved; a call takes one."""

    def __init__(self, rate: RateLimit, clock: Callable[[], float]) -> None:
        self.rate, self.clock = rate, clock
        self.tokens, self.at = rate.burst, clock()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        now = self.clock()
        self.tokens = min(self.rate.burst, self.tokens + (now - self.at) * self.rate.per_second)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate.per_second


class RateLimitInterceptor:
    """One token bucket per participant that has a rate limit (a changed limit takes effect on reload)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def wrap(self, method: str, proceed: Handler) -> Handler:
        async def limit(request: Any, context: Context, call: Call) -> Any:
            rate = call.caller.rate_limit
            if rate is not None:
                bucket = self._buckets.get(call.caller.id)
                if bucket is None or bucket.rate != rate:
                    bucket = self._buckets[call.caller.id] = TokenBucket(rate, self.clock)
                wait = bucket.take()
                if wait:
                    raise CallerRateLimited(call.caller.id, wait)
            return await proceed(request, context, call)

        return limit
