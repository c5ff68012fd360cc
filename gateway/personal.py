"""Personal numbers at rest (DESIGN §11): keyed hashes where only equality is needed, AES-GCM where the hub must
send a number to a region again (a reversal names the person's SSN); never the numbers in clear.

Keys are files of 32 random bytes, created owner-only (0600) on first start. Rotation of the sealing key: move
the current file aside, list it in ``[ledger] old_key_files`` (so what it sealed still opens), and start the hub:
a new key is created and seals from then on. Every sealed value names the id of its key (the first 8 hex digits
of the key's SHA-256), so each is opened with the key that sealed it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "aesgcm1"


def create_key_file(path: Path, content: bytes) -> None:
    """Write a new owner-only key file whole, unless one exists: the content goes to a private temporary file
    first and is linked into place, so that replicas starting together all read the one key that won."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


def load_key(path: Path) -> bytes:
    """A 32-byte key from its file, created (random, owner-only) on first use."""
    create_key_file(path, os.urandom(32))
    key = path.read_bytes()
    if len(key) != 32:
        raise ValueError(f"{path} must hold 32 bytes, not {len(key)}")
    return key


class KeyedHash:
    """HMAC-SHA256 under the hub's key, as hex."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, *parts: str) -> str:
        return hmac.new(self._key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "KeyedHash(<key>)"


class SealError(ValueError):
    """A sealed value cannot be opened: its key is not configured, or it was altered."""


class Sealer:
    """AES-GCM under the current key; opens what the current or an old key sealed.

    Args:
        key: the key new values are sealed with.
        old_keys: keys of earlier rotations, for opening only.
    """

    def __init__(self, key: bytes, old_keys: Iterable[bytes] = ()) -> None:
        self._current = (_key_id(key), AESGCM(key))
        self._keys = {_key_id(k): AESGCM(k) for k in (*old_keys, key)}

    def seal(self, text: str) -> str:
        """``aesgcm1:<key id>:<base64 of nonce and ciphertext>``."""
        key_id, aead = self._current
        nonce = os.urandom(12)
        sealed = nonce + aead.encrypt(nonce, text.encode(), key_id.encode())
        return f"{_PREFIX}:{key_id}:{base64.b64encode(sealed).decode()}"

    def open(self, sealed: str) -> str:
        prefix, key_id, body = [*sealed.split(":", 2), "", ""][:3]
        aead = self._keys.get(key_id)
        if prefix != _PREFIX or aead is None:
            raise SealError(f"no key {key_id!r} to open a sealed value with")
        raw = base64.b64decode(body)
        try:
            return aead.decrypt(raw[:12], raw[12:], key_id.encode()).decode()
        except InvalidTag:
            raise SealError(f"a value sealed with key {key_id} was altered") from None

    def seal_bytes(self, data: bytes) -> bytes:
        return self.seal(base64.b64encode(data).decode()).encode()

    def open_bytes(self, sealed: bytes) -> bytes:
        return base64.b64decode(self.open(sealed.decode()))

    def __repr__(self) -> str:
        return f"Sealer(keys={sorted(self._keys)})"


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]
