"""The sandbox's national electronic social security card platform (电子社保卡, DESIGN §4.8).

The platform issues a dynamic QR token for one card. The token names the card, lives at most
:data:`MAX_TTL_SECONDS`, is signed by the platform's key and may be used once (the hub remembers its id).

Token format (all ASCII, so it goes into a QR code as it is; about 450 characters)::

    base64url(payload) "." base64url(signature)

* base64url is RFC 4648 §5 without ``=`` padding.
* ``payload`` is a UTF-8 JSON object with exactly these members:

  ============================  =====================================================================
  ``kid``                       id of the platform key that signed it (rotation: see ``config/hub.toml``)
  ``jti``                       random unique token id; the hub accepts each id once
  ``iat``                       issued at, integer seconds since the Unix epoch
  ``exp``                       expires at, integer seconds since the Unix epoch; ``exp - iat`` ≤ 60
  ``social_security_number``    the card's credential, as on the physical card (DESIGN §4.1) …
  ``card_number``
  ``card_identification_code``
  ``issuing_area``
  ``holder_name``
  ============================  =====================================================================

* ``signature`` is the 64-byte Ed25519 signature of the ASCII bytes of the first segment (the encoded
  payload, as in JWS), so any change to the payload, its encoding included, breaks the signature.

The national platform signs with SM2 in real life. No well-kept SM2 library exists for Python (``cryptography``
offers SM3 and SM4 but not SM2), so the sandbox and the hub use Ed25519 through ``cryptography``.

The sandbox key below is derived from a fixed, published seed, like the synthetic people: **it is for the
sandbox only** and anybody can sign with it. A real deployment configures the platform's public keys in
``config/hub.toml`` and never this one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from adapters.domain import CardCredential
from regions.seed import SeededPerson

MAX_TTL_SECONDS = 60
SANDBOX_SEED = "yikatong sandbox national e-card platform, key 2026 (public seed: sandbox only)"
SANDBOX_KEY_ID = "sandbox-2026"

__all__ = [
    "MAX_TTL_SECONDS",
    "SANDBOX_KEY",
    "SANDBOX_KEY_ID",
    "b64url",
    "credential_of",
    "derive_key",
    "issue_token",
    "public_key_base64",
    "sign_payload",
]


def derive_key(seed: str) -> Ed25519PrivateKey:
    """A deterministic Ed25519 key from a seed string (SHA-256 of the seed is the private key).

    Only for sandboxes and tests: whoever knows the seed can sign.
    """
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


SANDBOX_KEY = derive_key(SANDBOX_SEED)


def public_key_base64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key in standard base64, as ``[ecard.keys]`` in ``config/hub.toml`` holds it."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def b64url(data: bytes) -> str:
    """RFC 4648 §5 base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_payload(payload: Mapping[str, object], key: Ed25519PrivateKey) -> str:
    """A token of any payload, signed as the platform signs; tests use it to build odd tokens."""
    body = b64url(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    return f"{body}.{b64url(key.sign(body.encode()))}"


def issue_token(
    card: CardCredential,
    *,
    ttl_seconds: int = MAX_TTL_SECONDS,
    now: float | None = None,
    key: Ed25519PrivateKey = SANDBOX_KEY,
    kid: str = SANDBOX_KEY_ID,
    token_id: str | None = None,
) -> str:
    """A QR token for one card, valid from ``now`` for ``ttl_seconds``.

    Args:
        card: the card's credential; it is copied into the token as it is (the hub validates it).
        ttl_seconds: lifetime, 1 to :data:`MAX_TTL_SECONDS`.
        now: issue time in seconds since the epoch (default: the wall clock).
        key: the platform's signing key.
        kid: the id under which the hub knows ``key``'s public half.
        token_id: the token's unique id (default: 128 random bits).

    Raises:
        ValueError: ``ttl_seconds`` is not from 1 to :data:`MAX_TTL_SECONDS`.
    """
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be from 1 to {MAX_TTL_SECONDS}, not {ttl_seconds}")
    issued = int(time.time() if now is None else now)
    payload = {
        "kid": kid,
        "jti": token_id or secrets.token_urlsafe(16),
        "iat": issued,
        "exp": issued + ttl_seconds,
        "social_security_number": card.social_security_number,
        "card_number": card.card_number,
        "card_identification_code": card.card_identification_code,
        "issuing_area": card.issuing_area,
        "holder_name": card.holder_name,
    }
    return sign_payload(payload, key)


def credential_of(person: SeededPerson) -> CardCredential:
    """The credential of a sandbox person's card as seeded.

    Raises:
        ValueError: the person has no card.
    """
    if person.status is None:
        raise ValueError(f"{person.social_security_number} has no card")
    return CardCredential(
        person.social_security_number,
        person.card_number,
        person.card_identification_code,
        person.issuing_area,
        person.name,
    )
