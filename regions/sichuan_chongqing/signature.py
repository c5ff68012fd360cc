"""The 川渝 region's check of a request's signature, written apart from the adapter's signing on purpose.

The headers, the codes and the allowed clock skew are the protocol's (:mod:`adapters.sichuan_chongqing.protocol`);
the HMAC is computed here from the protocol's description, not with the adapter's ``sign``, so that an adapter
that signs the wrong bytes is refused by the sandbox as the real region would refuse it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from adapters.sichuan_chongqing.protocol import (
    BAD_SIGNATURE,
    MAX_SKEW_SECONDS,
    PAAS_ID_HEADER,
    SIGNATURE_HEADER,
    STALE_TIMESTAMP,
    TIMESTAMP_HEADER,
)


def check(headers: Mapping[str, str], body: bytes, *, paas_id: str, secret: str, now: float) -> str | None:
    """Check a received request's signing headers.

    Args:
        headers: the request's headers (a case-insensitive mapping, as web frameworks give them).
        body: the raw request body as received.
        paas_id: the platform id the region expects.
        secret: the secret shared with that platform.
        now: the region's current unix time in seconds.

    Returns:
        ``None`` when the request is authentic and fresh, otherwise the code to refuse it with:
        ``BAD_SIGNATURE`` or ``STALE_TIMESTAMP``.
    """
    raw_timestamp = headers.get(TIMESTAMP_HEADER, "")
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit()):
        return BAD_SIGNATURE
    timestamp = int(raw_timestamp)
    signed = str(timestamp).encode("ascii") + body  # the timestamp's digits, then the body
    expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    given = headers.get(SIGNATURE_HEADER, "")
    same_caller = hmac.compare_digest(headers.get(PAAS_ID_HEADER, "").encode(), paas_id.encode())
    if not (same_caller and hmac.compare_digest(given.encode(), expected.encode())):
        return BAD_SIGNATURE
    if abs(now - timestamp) > MAX_SKEW_SECONDS:
        return STALE_TIMESTAMP
    return None
