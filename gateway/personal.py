"""Personal numbers at rest (DESIGN §11): the hub keeps keyed hashes where only equality is needed.

The key is the holder directory's (``directory.key``, created on first start, owner-only); without it a hash
cannot be tied back to a person by trying every possible SSN.
"""

from __future__ import annotations

import hashlib
import hmac


class KeyedHash:
    """HMAC-SHA256 under the hub's key, as hex."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, *parts: str) -> str:
        return hmac.new(self._key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()
