"""Verification of electronic social security card tokens (电子社保卡, DESIGN §4.8).

A token (format: ``regions.ecard``) stands in for a physical card. The hub accepts it when, checked in this
order:

1. it is well formed: two base64url segments, a JSON object with every member of the right type
   (else ``INVALID_ARGUMENT`` naming the token field);
2. its key id is configured (``ECARD_KEY_UNKNOWN``);
3. its Ed25519 signature verifies under that key (``ECARD_SIGNATURE_INVALID``);
4. it was issued for no longer than allowed, and now is inside its lifetime, give or take the clock-skew
   allowance (``ECARD_TOKEN_EXPIRED``, ``ECARD_TOKEN_NOT_YET_VALID``);
5. the card it names passes the same validation as a physical card (``INVALID_ARGUMENT`` naming
   ``<field>.<member>``);
6. it has not been used before (``ECARD_TOKEN_USED``), which the ledger decides atomically.

The refusals of 2–4 and 6 are ``UNAUTHENTICATED``. Ed25519 verification takes some 50 µs, so it runs on the
event loop; only the ledger call leaves it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from adapters import domain
from adapters.errors import InvalidArgument
from gateway import validation
from gateway.errors import (
    ECardKeyUnknown,
    ECardSignatureInvalid,
    ECardTokenExpired,
    ECardTokenNotYetValid,
    ECardTokenUsed,
)

__all__ = ["MAX_TOKEN_LENGTH", "TokenStore", "TokenVerifier"]

MAX_TOKEN_LENGTH = 2048  # far above any real token (~450), far below what a QR code can hold
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_TEXT_CLAIMS = (
    "kid",
    "jti",
    "social_security_number",
    "card_number",
    "card_identification_code",
    "issuing_area",
    "holder_name",
)
_TIME_CLAIMS = ("iat", "exp")
MAX_ID_LENGTH = 64


class TokenStore(Protocol):
    """Where used token ids are remembered (the ledger is one)."""

    async def use_token(self, token_id: str, expires_at: float, now: float) -> bool:
        """Mark ``token_id`` used until ``expires_at``; False when it was used before. Must be atomic."""
        ...


def _segment(value: str, field: str, part: str) -> bytes:
    # The alphabet check comes first: the base64 module would skip characters outside it silently.
    if not _SEGMENT.fullmatch(value) or len(value) % 4 == 1:
        raise InvalidArgument(field, f"{part} is not base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidArgument(field, f"{part} is not base64url") from None


def _claims(payload: bytes, field: str) -> dict[str, Any]:
    try:
        claims = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidArgument(field, "payload is not JSON") from None
    if not isinstance(claims, dict):
        raise InvalidArgument(field, "payload is not a JSON object")
    for name in _TEXT_CLAIMS:
        if not isinstance(claims.get(name), str):
            raise InvalidArgument(field, f"payload member {name} is missing or not a string")
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(field, f"payload member {name} is missing or not an integer")
    for name in ("kid", "jti"):
        if not 0 < len(claims[name]) <= MAX_ID_LENGTH:
            raise InvalidArgument(field, f"payload member {name} must be 1 to {MAX_ID_LENGTH} characters")
    return claims


class TokenVerifier:
    """Turns an e-card token into the credential of the card it names, or refuses it.

    Args:
        keys: the platform's public keys by key id. Rotation: configure the new id beside the old one, and
            remove the old one once its last tokens have expired.
        store: remembers used token ids (atomically: of concurrent uses of one token, one wins).
        clock: wall clock, seconds since the epoch; injectable for tests.
        skew_seconds: how far the platform's clock may be off from the hub's.
        max_ttl_seconds: longest lifetime (``exp - iat``) a token may have been issued with.
    """

    def __init__(
        self,
        keys: Mapping[str, Ed25519PublicKey],
        store: TokenStore,
        *,
        clock: Callable[[], float],
        skew_seconds: float,
        max_ttl_seconds: float,
    ) -> None:
        self._keys = dict(keys)
        self._store = store
        self._clock = clock
        self._skew = skew_seconds
        self._max_ttl = max_ttl_seconds

    async def credential(self, token: str, field: str = "card.ecard_token") -> domain.CardCredential:
        """The credential of the card the token names, once the token is checked and marked used.

        Raises:
            InvalidArgument: the token is malformed, or the card it names is invalid (naming ``field``).
            ECardTokenRejected: one of its subclasses, for a token that does not authenticate a card.
        """
        claims = self._authentic(token, field)
        now = self._clock()
        self._check_times(claims["iat"], claims["exp"], now)
        card = self._card(claims, field)
        # Remembered until the last moment it could still be accepted, so no replay slips through the skew.
        if not await self._store.use_token(claims["jti"], claims["exp"] + self._skew, now):
            raise ECardTokenUsed(claims["jti"])
        return card

    def _authentic(self, token: str, field: str) -> dict[str, Any]:
        """The claims of a well-formed token whose signature verifies under a configured key."""
        if not token:
            raise InvalidArgument(field, "is required")
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidArgument(field, f"is longer than {MAX_TOKEN_LENGTH} characters")
        parts = token.split(".")
        if len(parts) != 2:
            raise InvalidArgument(field, "must be two base64url parts joined by '.'")
        body, signature = _segment(parts[0], field, "payload"), _segment(parts[1], field, "signature")
        if len(signature) != 64:
            raise InvalidArgument(field, "signature must be 64 bytes")
        claims = _claims(body, field)
        key = self._keys.get(claims["kid"])
        if key is None:
            raise ECardKeyUnknown(claims["kid"])
        try:
            key.verify(signature, parts[0].encode())
        except InvalidSignature:
            raise ECardSignatureInvalid(claims["kid"]) from None
        return claims

    def _check_times(self, issued: int, expires: int, now: float) -> None:
        if not 0 < expires - issued <= self._max_ttl:
            lifetime = str(expires - issued)
            raise ECardTokenExpired(
                f"e-card token lifetime of {lifetime} s is not within 1 to {self._max_ttl:g} s",
                metadata={"lifetime_seconds": lifetime, "max_ttl_seconds": f"{self._max_ttl:g}"},
            )
        if expires + self._skew < now:
            raise ECardTokenExpired(f"e-card token expired at {expires}", metadata={"expires_at": str(expires)})
        if issued - self._skew > now:
            raise ECardTokenNotYetValid(
                f"e-card token is issued at {issued}, in the future", metadata={"issued_at": str(issued)}
            )

    @staticmethod
    def _card(claims: Mapping[str, str], field: str) -> domain.CardCredential:
        """The card named in a genuine token, validated like a physical card's credential (its code required)."""
        if not claims["card_identification_code"]:
            raise InvalidArgument(f"{field}.card_identification_code", "is required")
        return validation.credential(
            claims["social_security_number"],
            claims["card_number"],
            claims["card_identification_code"],
            claims["issuing_area"],
            claims["holder_name"],
            field,
            name_required=True,
        )
