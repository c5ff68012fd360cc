"""Idempotent writes (DESIGN §6): a request id with a fingerprint of the request, and its stored outcome.

Same id and same fingerprint replays the stored answer; same id with another request is refused; the same id
while the first call still runs is refused as in progress. Only definite outcomes are stored — an answer or a
refusal. When the region could not be reached or did not answer, the claim is released so the caller's retry,
with the same id, reaches the region again (which deduplicates on it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from adapters.errors import IdempotencyKeyReused, Refusal, RequestInProgress
from gateway.ledger import Claim, LedgerStore
from gateway.status import StoredOutcome, code_of

R = TypeVar("R", bound=Message)

_ANSWER, _REFUSAL = b"R", b"E"


def fingerprint(request: Message) -> str:
    """SHA-256 of the request's deterministic serialisation without its ``request_id``."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class Idempotency:
    """Runs writes at most once per (method, request id)."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    async def run(
        self,
        method: str,
        request_id: str,
        request: Message,
        produce: Callable[[], Awaitable[R]],
        answer: type[R],
    ) -> R:
        """Answer a validated write request once; replays and refusals per the module docstring."""
        found = await self.store.claim(method, request_id, fingerprint(request))
        if found.claim is Claim.MISMATCH:
            raise IdempotencyKeyReused(request_id)
        if found.claim is Claim.IN_PROGRESS:
            raise RequestInProgress(request_id)
        if found.claim is Claim.REPLAY:
            return _replay(found.outcome or b"", answer)
        try:
            response = await produce()
        except Refusal as refusal:
            await self.store.complete(method, request_id, _REFUSAL + _encode_refusal(refusal))
            raise
        except BaseException:
            await self.store.release(method, request_id)
            raise
        await self.store.complete(method, request_id, _ANSWER + response.SerializeToString())
        return response


def _encode_refusal(refusal: Refusal) -> bytes:
    code = code_of(refusal).name
    body = {"code": code, "reason": refusal.reason, "message": refusal.message, "metadata": refusal.metadata}
    return json.dumps(body).encode()


def _replay(outcome: bytes, answer: type[R]) -> R:
    kind, body = outcome[:1], outcome[1:]
    if kind == _ANSWER:
        response = answer()
        response.ParseFromString(body)
        return response
    stored = json.loads(body)
    raise StoredOutcome(grpc.StatusCode[stored["code"]], stored["reason"], stored["message"], stored["metadata"])
