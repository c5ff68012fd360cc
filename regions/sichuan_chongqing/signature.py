"""The 川渝 region's check of a request's signature, written apart from the adapter's signing on purpose.

The headers, the codes, the nonce's form and the allowed clock skew are the protocol's
(:mod:`adapters.sichuan_chongqing.protocol`); the canonical request and its HMAC are computed here from the
protocol's description, not with the adapter's ``sign``, so that an adapter that signs the wrong bytes is refused by
the sandbox as the real region would refuse it.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from adapters.sichuan_chongqing.protocol import (
    BAD_SIGNATURE,
    MAX_SKEW_SECONDS,
    NONCE_ALPHABET,
    NONCE_HEADER,
    NONCE_LENGTHS,
    PAAS_ID_HEADER,
    REPLAYED_NONCE,
    SIGNATURE_HEADER,
    STALE_TIMESTAMP,
    TIMESTAMP_HEADER,
)

_UNRESERVED = "-_.~"  # RFC 3986: with letters and digits, what the canonical query leaves as it is


@dataclass(frozen=True)
class Received:
    """A request as the region received it.

    Attributes:
        method: the HTTP method.
        raw_path: the path as it came on the request line (percent-encoded), without the query.
        query: the query's (name, value) pairs, decoded.
        headers: the headers (a case-insensitive mapping, as web frameworks give them).
        body: the raw body.
    """

    method: str
    raw_path: str
    query: Iterable[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes


class NonceWindow:
    """The nonces the region accepted, each kept until its request's timestamp leaves the window.

    A nonce is remembered per caller until ``timestamp + MAX_SKEW_SECONDS``; after that the timestamp check refuses
    a replay on its own, so the memory stays bounded by the requests of one window.
    """

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._expiry: list[tuple[float, str, str]] = []

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, paas_id: str, nonce: str, timestamp: int, now: float) -> bool:
        """Remember the nonce; False when it is already remembered (a replay)."""
        while self._expiry and self._expiry[0][0] < now:
            _, caller, old = heapq.heappop(self._expiry)
            self._seen.discard((caller, old))
        if (paas_id, nonce) in self._seen:
            return False
        self._seen.add((paas_id, nonce))
        heapq.heappush(self._expiry, (timestamp + MAX_SKEW_SECONDS, paas_id, nonce))
        return True


def _canonical(request: Received, timestamp: str, nonce: str) -> bytes:
    pairs = sorted((quote(k, safe=_UNRESERVED), quote(v, safe=_UNRESERVED)) for k, v in request.query)
    lines = [
        request.method.upper(),
        request.raw_path,
        "&".join(f"{k}={v}" for k, v in pairs),
        timestamp,
        nonce,
        hashlib.sha256(request.body).hexdigest(),
    ]
    return "\n".join(lines).encode("utf-8")


def _well_formed(nonce: str) -> bool:
    return len(nonce) in NONCE_LENGTHS and all(c in NONCE_ALPHABET for c in nonce)


def check(request: Received, *, paas_id: str, secret: str, now: float, nonces: NonceWindow) -> str | None:
    """Check a received request's signing headers; remember its nonce when it passes.

    Order matters: only an authentic request (signature over method, path, query, timestamp, nonce and body) may
    spend a nonce, so nobody can fill the window with nonces of requests they could not sign.

    Args:
        request: the request as received.
        paas_id: the platform id the region expects.
        secret: the secret shared with that platform.
        now: the region's current unix time in seconds.
        nonces: the nonces accepted so far.

    Returns:
        ``None`` when the request is authentic, fresh and new, otherwise the code to refuse it with:
        ``BAD_SIGNATURE``, ``STALE_TIMESTAMP`` or ``REPLAYED_NONCE``.
    """
    headers = request.headers
    raw_timestamp, nonce = headers.get(TIMESTAMP_HEADER, ""), headers.get(NONCE_HEADER, "")
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit() and _well_formed(nonce)):
        return BAD_SIGNATURE
    signed = _canonical(request, raw_timestamp, nonce)
    expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    given = headers.get(SIGNATURE_HEADER, "")
    same_caller = hmac.compare_digest(headers.get(PAAS_ID_HEADER, "").encode(), paas_id.encode())
    if not (same_caller and hmac.compare_digest(given.encode(), expected.encode())):
        return BAD_SIGNATURE
    timestamp = int(raw_timestamp)
    if abs(now - timestamp) > MAX_SKEW_SECONDS:
        return STALE_TIMESTAMP
    if not nonces.admit(paas_id, nonce, timestamp, now):
        return REPLAYED_NONCE
    return None
