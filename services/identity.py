"""`SupportBot.identify(...)` from a company's page: who the customer is, for the agents.

With WIDGET_IDENTITY_SECRET set, an identity needs the company server's signature:
hex(HMAC-SHA256(secret, userId)), so nobody can claim to be another customer; a missing or
wrong one is refused (IDENTITY_REFUSED). Without the secret an identity is kept marked
unverified. A conversation takes one identity (the first); another customer's is refused,
and the widget starts a new conversation for them.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from services.errors import DomainError
from services.sessions import SessionManager


class IdentityRefused(DomainError):
    status, code, title = 403, "IDENTITY_REFUSED", "Identity refused"


def sign(secret: bytes, user_id: str) -> str:
    """What the company's server computes for a signed-in customer."""
    return hmac.new(secret, user_id.encode(), hashlib.sha256).hexdigest()


class Identities:
    def __init__(self, sessions: SessionManager, secret: bytes | None = None) -> None:
        self.sessions = sessions
        self.secret = secret

    def verified(self, user_id: str, signature: str | None) -> bool:
        """True when signed correctly; IdentityRefused when a secret is set and it is not."""
        if self.secret is None:
            return False
        if not signature or not hmac.compare_digest(
            sign(self.secret, user_id), signature.strip().lower()
        ):
            raise IdentityRefused("the identity's signature does not match")
        return True

    async def identify(
        self,
        session_id: str,
        *,
        user_id: str,
        name: str | None = None,
        email: str | None = None,
        signature: str | None = None,
    ) -> dict[str, Any]:
        """Attach the customer's identity to the conversation (once)."""
        verified = self.verified(user_id, signature)
        await self.sessions.get(session_id)  # SessionNotFound for an unknown or expired one
        identity: dict[str, Any] = {"userId": user_id, "verified": verified}
        if name:
            identity["name"] = name
        if email:
            identity["email"] = email
        if not await self.sessions.set_once(session_id, "identity", identity):
            sealed = (await self.sessions.snapshot(session_id)).fields.get("identity")
            kept = self.sessions.open_field(session_id, "identity", sealed) if sealed else None
            if not isinstance(kept, dict) or kept.get("userId") != user_id:
                raise IdentityRefused("this conversation belongs to another customer")
            return dict(kept)
        return identity
