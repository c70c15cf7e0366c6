"""Sealing session data at rest with AES-256-GCM.

A sealed value is `0x01 | key id (4 bytes) | nonce (12) | ciphertext+tag`. The
associated data binds each value to its session and field, so a value copied to
another session or field does not open. Several keys may be given (comma-separated):
the first seals, all open, which lets an operator rotate keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

VERSION = b"\x01"


class EncryptionKeyError(ValueError):
    """SESSION_ENCRYPTION_KEY is missing or malformed."""


class SealError(Exception):
    """A sealed value does not open (wrong key, tampered, or moved)."""


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def parse_key(text: str) -> bytes:
    text = text.strip()
    try:
        if len(text) == 64:
            return bytes.fromhex(text)
    except ValueError:
        pass
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise EncryptionKeyError(
            "SESSION_ENCRYPTION_KEY must be 32 bytes as 64 hex characters or base64 "
            "(make one with: python -m services.crypto)"
        )
    return raw


class Sealer:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise EncryptionKeyError("SESSION_ENCRYPTION_KEY: no key given")
        self._by_id = {hashlib.sha256(k).digest()[:4]: AESGCM(k) for k in keys}
        self._seal_id = hashlib.sha256(keys[0]).digest()[:4]
        self._seal_aead = self._by_id[self._seal_id]
        self._seal_key = keys[0]
        self._keys = list(keys)

    @classmethod
    def from_setting(cls, value: str) -> Sealer:
        return cls([parse_key(part) for part in value.split(",") if part.strip()])

    def derive(self, purpose: str, key: bytes | None = None) -> bytes:
        """A 32-byte key for another purpose (e.g. signing agent tokens), from the sealing key."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"supportbot:{purpose}".encode()
        )
        return hkdf.derive(key or self._seal_key)

    def derive_all(self, purpose: str) -> list[bytes]:
        """`derive` under every configured key, the newest first (for look-ups that must
        still find what was keyed before a rotation)."""
        return [self.derive(purpose, key) for key in self._keys]

    @staticmethod
    def looks_sealed(value: bytes) -> bool:
        return len(value) >= 1 + 4 + 12 + 16 and value[:1] == VERSION

    def is_current(self, sealed: bytes) -> bool:
        """Sealed with the newest key (nothing for a key rotation to do)."""
        return self.looks_sealed(sealed) and sealed[1:5] == self._seal_id

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return VERSION + self._seal_id + nonce + self._seal_aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < 1 + 4 + 12 + 16 or sealed[:1] != VERSION:
            raise SealError("not a sealed value")
        aead = self._by_id.get(sealed[1:5])
        if aead is None:
            raise SealError("sealed with an unknown key")
        try:
            return aead.decrypt(sealed[5:17], sealed[17:], aad)
        except InvalidTag:
            raise SealError("value does not open") from None


def load_sealer(configured: str | None, *, production: bool, key_file: Path) -> Sealer:
    """The configured key; in development a generated one kept in a git-ignored file."""
    if configured:
        return Sealer.from_setting(configured)
    if production:
        raise EncryptionKeyError("SESSION_ENCRYPTION_KEY is required in production")
    if key_file.exists():
        key = key_file.read_text().strip()
    else:
        key = new_key()
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
    log.warning(
        "SESSION_ENCRYPTION_KEY not set: using the development key in %s; set it in production",
        key_file.name,
    )
    return Sealer.from_setting(key)


if __name__ == "__main__":
    print(new_key())
