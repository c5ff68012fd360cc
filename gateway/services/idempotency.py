"""Idempotent writes (DESIGN §6): a request id with a fingerprint of the request, and its stored outcome.

Keys are per participant (DESIGN §10): (participant, method, request id). The fingerprint is a keyed hash
(HMAC-SHA256, ``gateway.personal``) of the canonical encoding (``gateway.canonical``) of the domain request
without its request ids, and stored outcomes are sealed (AES-GCM): no personal number is kept in clear. Same id and same
fingerprint replays the stored outcome; same id with another request is refused; the same id while the first
call still runs is refused as in progress. Only definite outcomes are
stored — an answer (its canonical encoding) or an error whose ``definite`` is set (a refusal, a voided
settlement). When the region could not be reached or did not answer, the claim is released so the caller's
retry, with the same id, reaches the region again (which deduplicates on it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from adapters.errors import IdempotencyKeyReused, YikatongError
from gateway import canonical
from gateway.errors import RequestInProgress, StoredRefusal, error_class
from gateway.ledger import Claim, ClaimResult, LedgerStore, RequestKey
from gateway.ledger.audit import AuditEntry
from gateway.personal import KeyedHash, Sealer
from gateway.services.audit import Auditor
from gateway.services.call import Call

R = TypeVar("R")


class Request(Protocol):
    """A domain write request: a frozen dataclass with a ``request_id``."""

    @property
    def request_id(self) -> str: ...


def fingerprint(request: Request, keyed: KeyedHash) -> str:
    """The keyed hash of the request's canonical encoding without its ``request_id`` (at any depth)."""
    return keyed(canonical.encode(_without_ids(canonical.to_json(request))).decode())


PERSONAL = ("social_security_number", "card_number", "card_identification_code")


def personal_numbers(value: Any) -> list[str]:
    """Every personal number in a domain value's canonical JSON (for the audit chain, which keeps their hashes)."""
    if isinstance(value, dict):
        found = [str(value[k]) for k in PERSONAL if value.get(k)]
        return found + [n for k, v in value.items() if k not in PERSONAL for n in personal_numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in personal_numbers(v)]
    return []


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "request_id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


class Idempotency:
    """Runs writes at most once per (participant, method, request id).

    Args:
        store: the ledger.
        sealer: seals stored outcomes.
        auditor: records the outcome of writes whose change is the region's alone (``audited``).
    """

    def __init__(self, store: LedgerStore, sealer: Sealer, auditor: Auditor) -> None:
        self.store, self.sealer, self.auditor = store, sealer, auditor

    async def run(
        self,
        call: Call,
        method: str,
        request: Request,
        produce: Callable[[], Awaitable[R]],
        answer: type[R],
        *,
        audited: bool = False,
    ) -> R:
        """``produce()`` once for the caller's request; replays and refusals per the module docstring. With
        ``audited``, the outcome's audit record is appended with it (writes the hub keeps no other row of)."""
        key, fingerprint_ = self.key(call, method, request)
        found = await self.store.claim(key, fingerprint_)
        if found.claim is not Claim.NEW:
            return self.answer_of(key, found, answer)
        numbers = personal_numbers(canonical.to_json(request)) if audited else []
        try:
            outcome = await produce()
        except YikatongError as exc:
            entry = self.auditor.entry(call, "REFUSED", exc.reason, numbers=numbers) if audited else None
            await self.failed(key, exc, entry)
            raise
        except BaseException:
            await self.store.release(key)
            raise
        entry = self.auditor.entry(call, "OK", "DONE", numbers=numbers) if audited else None
        await self.store.complete(key, self.sealed(outcome), entry)
        return outcome

    # --- the parts, for a write that claims and completes within its own ledger operations (settlement) -------

    def key(self, call: Call, method: str, request: Request) -> tuple[RequestKey, str]:
        """The request's idempotency key and fingerprint."""
        return RequestKey(call.participant, method, request.request_id), fingerprint(request, self.auditor.persons)

    def answer_of(self, key: RequestKey, found: ClaimResult, answer: type[R]) -> R:
        """What a claim that is not new answers: the stored outcome replayed, or a refusal."""
        if found.claim is Claim.MISMATCH:
            raise IdempotencyKeyReused(key.request_id)
        if found.claim is Claim.IN_PROGRESS:
            raise RequestInProgress(key.request_id)
        return _replay(self.sealer.open_bytes(found.outcome or b""), answer)

    async def replayed(self, key: RequestKey, fingerprint_: str, answer: type[R]) -> R | None:
        """The stored outcome of a finished request (read only; None when there is none to replay)."""
        found = await self.store.finished(key, fingerprint_)
        return None if found is None else self.answer_of(key, found, answer)

    def sealed(self, outcome: object) -> bytes:
        """An answer as its idempotency record keeps it."""
        return self.sealer.seal_bytes(canonical.encode({"answer": outcome}))

    async def failed(self, key: RequestKey, error: YikatongError, entry: AuditEntry | None = None) -> None:
        """A claimed request ended with an error: a definite one is kept for replay, else the claim is released."""
        if error.definite:
            await self.store.complete(key, self.sealer.seal_bytes(_refusal(error)), entry)
        else:
            await self.store.release(key)


def _refusal(refusal: YikatongError) -> bytes:
    stored = {"error": type(refusal).__name__, "reason": refusal.reason, "message": refusal.message}
    return canonical.encode({"refusal": {**stored, "metadata": refusal.metadata}})


def _replay(outcome: bytes, answer: type[R]) -> R:
    stored: dict[str, Any] = json.loads(outcome)
    if "answer" in stored:
        return canonical.from_json(answer, stored["answer"])  # type: ignore[no-any-return]
    refusal = stored["refusal"]
    raise StoredRefusal(error_class(refusal["error"]), refusal["reason"], refusal["message"], refusal["metadata"])
