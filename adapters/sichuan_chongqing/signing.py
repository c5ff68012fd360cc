"""How the 川渝 adapter signs its requests (headers and canonical request: :mod:`adapters.sichuan_chongqing.protocol`).

The region's server checks signatures with its own code (:mod:`regions.sichuan_chongqing.signature`), so that the
sandbox stays an independent check of this one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import quote

from adapters.sichuan_chongqing.protocol import (
    NONCE_HEADER,
    PAAS_ID_HEADER,
    QUERY_SAFE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)


def canonical_query(params: Mapping[str, str]) -> str:
    """The query line of the canonical request: pairs encoded, sorted, joined by ``&``."""
    pairs = sorted((quote(name, safe=QUERY_SAFE), quote(value, safe=QUERY_SAFE)) for name, value in params.items())
    return "&".join(f"{name}={value}" for name, value in pairs)


def sign(
    secret: str, method: str, path: str, params: Mapping[str, str], timestamp: int, nonce: str, body: bytes
) -> str:
    """The signature of one request.

    Args:
        secret: the secret shared by caller and region.
        method: the HTTP method.
        path: the path exactly as sent (percent-encoded), without the query.
        params: the query's names and values, not encoded.
        timestamp: unix seconds, as sent in ``X-Timestamp``.
        nonce: as sent in ``X-Nonce``.
        body: the raw request body, ``b""`` for a request without one.

    Returns:
        The lower-case hex HMAC-SHA256 of the canonical request.
    """
    lines = (method.upper(), path, canonical_query(params), str(timestamp), nonce, hashlib.sha256(body).hexdigest())
    return hmac.new(secret.encode("utf-8"), "\n".join(lines).encode("utf-8"), hashlib.sha256).hexdigest()


def signed_headers(
    paas_id: str,
    secret: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    body: bytes,
    now: float,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four signing headers of a request sent at ``now``.

    Args:
        paas_id: the caller's platform id.
        secret: the secret shared by caller and region.
        method: the HTTP method.
        path: the path exactly as sent (percent-encoded), without the query.
        params: the query's names and values, not encoded.
        body: the raw request body, ``b""`` for a request without one.
        now: the current unix time in seconds.
        nonce: the request's nonce (default: 128 fresh random bits, base64url); never reuse one.

    Returns:
        Header names and values to add to the request.
    """
    timestamp = int(now)
    nonce = nonce or secrets.token_urlsafe(16)
    return {
        PAAS_ID_HEADER: paas_id,
        TIMESTAMP_HEADER: str(timestamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign(secret, method, path, params, timestamp, nonce, body),
    }
