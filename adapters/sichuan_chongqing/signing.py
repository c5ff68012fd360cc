"""Request signing of the 川渝 protocol, shared by the adapter (which signs) and the sandbox (which checks).

Every request carries three headers:

* ``X-Paas-Id``: the caller's platform id, agreed with the region;
* ``X-Timestamp``: unix seconds when the request was signed;
* ``X-Signature``: lower-case hex HMAC-SHA256, keyed with the shared secret, over the timestamp's decimal
  digits followed by the raw request body (empty for ``GET``).

The query string is not signed; it carries only look-up keys, never a write.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

PAAS_ID_HEADER = "X-Paas-Id"
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"

MAX_SKEW_SECONDS = 300
"""How far a request's timestamp may be from the region's clock, either way."""

BAD_SIGNATURE = "4010"
"""Wire code of a request whose signature, platform id or timestamp is missing, malformed or wrong."""

STALE_TIMESTAMP = "4011"
"""Wire code of a correctly signed request whose timestamp is too far from the region's clock."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature of one request.

    Args:
        secret: the secret shared by caller and region.
        timestamp: unix seconds, as sent in ``X-Timestamp``.
        body: the raw request body, ``b""`` for a request without one.

    Returns:
        The lower-case hex HMAC-SHA256 over the timestamp's digits followed by the body.
    """
    message = str(timestamp).encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(paas_id: str, secret: str, body: bytes, now: float) -> dict[str, str]:
    """The three signing headers of a request sent at ``now``.

    Args:
        paas_id: the caller's platform id.
        secret: the secret shared by caller and region.
        body: the raw request body, ``b""`` for a request without one.
        now: the current unix time in seconds.

    Returns:
        Header names and values to add to the request.
    """
    timestamp = int(now)
    return {
        PAAS_ID_HEADER: paas_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def check(headers: Mapping[str, str], body: bytes, *, paas_id: str, secret: str, now: float) -> str | None:
    """Check a received request's signing headers.

    Args:
        headers: the request's headers (a case-insensitive mapping, as web frameworks give them).
        body: the raw request body as received.
        paas_id: the platform id the region expects.
        secret: the secret shared with that platform.
        now: the region's current unix time in seconds.

    Returns:
        ``None`` when the request is authentic and fresh, otherwise the wire code to refuse it with:
        :data:`BAD_SIGNATURE` or :data:`STALE_TIMESTAMP`.
    """
    raw_timestamp = headers.get(TIMESTAMP_HEADER, "")
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit()):
        return BAD_SIGNATURE
    timestamp = int(raw_timestamp)
    expected = sign(secret, timestamp, body)
    given = headers.get(SIGNATURE_HEADER, "")
    same_caller = hmac.compare_digest(headers.get(PAAS_ID_HEADER, "").encode(), paas_id.encode())
    if not (same_caller and hmac.compare_digest(given.encode(), expected.encode())):
        return BAD_SIGNATURE
    if abs(now - timestamp) > MAX_SKEW_SECONDS:
        return STALE_TIMESTAMP
    return None
