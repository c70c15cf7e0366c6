"""Argon2id password hashing, always off the event loop."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """Hash, verify and rehash with one PasswordHasher (argon2-cffi's defaults unless given).

    An unknown account still costs one verification, against a dummy hash made with the
    same parameters, so response time does not tell which e-mails have accounts.
    """

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, stored, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend what a real verification costs; the answer is always no."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._dummy, password)

    async def rehashed(self, stored: str, password: str) -> str | None:
        """A new hash when the stored one was made with other parameters, else None."""
        try:
            needed = self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            needed = True
        return await self.hash(password) if needed else None
