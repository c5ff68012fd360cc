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

The platform's key. ``yikatong up`` generates one into its data directory (:data:`PLATFORM_KEY_FILE`, the public
half in :data:`PLATFORM_PUBLIC_FILE`, which ``config/hub.toml`` references under the key id
:data:`SANDBOX_KEY_ID`) and makes it the process's platform (:func:`install`), so that its self-check and
``yikatong sandbox ecard-token --data-dir`` sign with it. Until a platform is installed — in tests — the platform
signs with :data:`SANDBOX_KEY`, derived from a fixed, published seed like the synthetic people: anybody can sign
with it. Both are sandbox keys: ``yikatong serve`` refuses to trust either without ``--dev``
(:func:`is_sandbox_key`). A real deployment configures the national platform's public keys in ``config/hub.toml``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from adapters.domain import CardCredential
from regions.certificates import write_private
from regions.seed import SeededPerson

MAX_TTL_SECONDS = 60
SANDBOX_SEED = "yikatong sandbox national e-card platform, key 2026 (public seed: sandbox only)"
SANDBOX_KEY_ID = "sandbox-2026"
"""The id under which ``config/hub.toml`` trusts the sandbox platform's key."""
PLATFORM_KEY_FILE = Path("secrets/ecard-platform.key")
"""Where in a data directory ``yikatong up`` keeps the sandbox platform's private key (PKCS#8 PEM)."""
PLATFORM_PUBLIC_FILE = Path("secrets/ecard-platform.pub")
"""… and its public half, as ``[ecard.keys]`` takes it (standard base64 of the raw 32 bytes)."""

__all__ = [
    "MAX_TTL_SECONDS",
    "PLATFORM_KEY_FILE",
    "PLATFORM_PUBLIC_FILE",
    "SANDBOX_KEY",
    "SANDBOX_KEY_ID",
    "Platform",
    "b64url",
    "credential_of",
    "derive_key",
    "install",
    "is_sandbox_key",
    "issue_token",
    "load_platform_key",
    "platform",
    "public_key_base64",
    "save_platform_key",
    "sign_payload",
]


def derive_key(seed: str) -> Ed25519PrivateKey:
    """A deterministic Ed25519 key from a seed string (SHA-256 of the seed is the private key).

    Only for sandboxes and tests: whoever knows the seed can sign.
    """
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


SANDBOX_KEY = derive_key(SANDBOX_SEED)


@dataclass(frozen=True)
class Platform:
    """The sandbox national e-card platform: the key it signs with and the id the hub knows that key by."""

    key: Ed25519PrivateKey
    kid: str = SANDBOX_KEY_ID


_installed = [Platform(SANDBOX_KEY)]


def install(new: Platform) -> None:
    """Make ``new`` the platform that :func:`issue_token` signs as, for this process (``yikatong up`` does)."""
    _installed[0] = new


def platform() -> Platform:
    """The platform :func:`issue_token` signs as: the installed one, else :data:`SANDBOX_KEY`'s."""
    return _installed[0]


def save_platform_key(data_dir: Path, key: Ed25519PrivateKey) -> None:
    """Write the platform's key (owner-only) and its public half into the data directory."""
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    write_private(data_dir / PLATFORM_KEY_FILE, pem)
    (data_dir / PLATFORM_PUBLIC_FILE).write_text(public_key_base64(key) + "\n", encoding="ascii")


def load_platform_key(data_dir: Path) -> Ed25519PrivateKey | None:
    """The platform key ``yikatong up`` generated into the data directory; None when there is none."""
    try:
        key = load_pem_private_key((data_dir / PLATFORM_KEY_FILE).read_bytes(), password=None)
    except FileNotFoundError:
        return None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{data_dir / PLATFORM_KEY_FILE} is not an Ed25519 private key")
    return key


def is_sandbox_key(public: Ed25519PublicKey, data_dir: Path) -> bool:
    """Whether a trusted key is a sandbox platform's: the published seed's, or the one in ``data_dir``.

    Whoever holds such a key's private half — anybody, or anybody who can read the data directory — can mint
    tokens for any card.
    """
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    generated = load_platform_key(data_dir)
    sandbox = [SANDBOX_KEY] + ([generated] if generated is not None else [])
    return any(k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == raw for k in sandbox)


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
    key: Ed25519PrivateKey | None = None,
    kid: str | None = None,
    token_id: str | None = None,
) -> str:
    """A QR token for one card, valid from ``now`` for ``ttl_seconds``.

    Args:
        card: the card's credential; it is copied into the token as it is (the hub validates it).
        ttl_seconds: lifetime, 1 to :data:`MAX_TTL_SECONDS`.
        now: issue time in seconds since the epoch (default: the wall clock).
        key: the signing key (default: the :func:`platform`'s).
        kid: the id under which the hub knows ``key``'s public half (default: the :func:`platform`'s).
        token_id: the token's unique id (default: 128 random bits).

    Raises:
        ValueError: ``ttl_seconds`` is not from 1 to :data:`MAX_TTL_SECONDS`.
    """
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be from 1 to {MAX_TTL_SECONDS}, not {ttl_seconds}")
    issued = int(time.time() if now is None else now)
    signer = platform()
    payload = {
        "kid": signer.kid if kid is None else kid,
        "jti": token_id or secrets.token_urlsafe(16),
        "iat": issued,
        "exp": issued + ttl_seconds,
        "social_security_number": card.social_security_number,
        "card_number": card.card_number,
        "card_identification_code": card.card_identification_code,
        "issuing_area": card.issuing_area,
        "holder_name": card.holder_name,
    }
    return sign_payload(payload, signer.key if key is None else key)


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
