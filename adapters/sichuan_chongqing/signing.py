"""How the 川渝 adapter signs its requests (the headers and what is signed: :mod:`adapters.sichuan_chongqing.protocol`).

The region's server checks signatures with its own code (:mod:`regions.sichuan_chongqing.signature`), so that the
sandbox stays an independent check of this one.
"""

from __future__ import annotations

import hashlib
import hmac

from adapters.sichuan_chongqing.protocol import PAAS_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER


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
