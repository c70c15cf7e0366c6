"""SessionManager: sessions and their transcripts, sealed at rest, over a SessionStore."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.crypto import Sealer, SealError
from services.errors import SessionNotFound
from services.store import SessionStore, now_ms


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def new_id(nbytes: int = 16) -> str:
    return secrets.token_urlsafe(nbytes)


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    metadata: dict[str, Any]
    created_at: int
    last_activity: int
    expires_at: int
    status: str = "active"
    escalated_at: int | None = None
    escalation_reasons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def escalated(self) -> bool:
        return self.escalated_at is not None


class SessionManager:
    def __init__(self, store: SessionStore, sealer: Sealer, *, ttl_ms: int) -> None:
        self.store = store
        self.sealer = sealer
        self.ttl_ms = ttl_ms

    # -- sealing -------------------------------------------------------------------
    def _seal(self, session_id: str, name: str, value: Any) -> bytes:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return self.sealer.seal(data, f"{session_id}|{name}".encode())

    def _open(self, session_id: str, name: str, sealed: bytes) -> Any:
        return json.loads(self.sealer.open(sealed, f"{session_id}|{name}".encode()))

    # -- sessions ------------------------------------------------------------------
    async def create(self, *, user_id: str, metadata: dict[str, Any] | None = None) -> Session:
        """Start a session with an unguessable id (192 random bits)."""
        session_id = new_id(24)
        now = now_ms()
        data = {"userId": user_id, "metadata": metadata or {}}
        await self.store.create(
            session_id,
            {
                "data": self._seal(session_id, "data", data),
                "status": b"active",
                "createdAt": str(now).encode(),
                "lastActivity": str(now).encode(),
            },
            self.ttl_ms,
        )
        return Session(session_id, user_id, data["metadata"], now, now, now + self.ttl_ms)

    async def get(self, session_id: str) -> Session:
        """The live session, or SessionNotFound (unknown, expired, or not ours to open)."""
        fields = await self.store.get(session_id)
        if not fields or "data" not in fields:
            raise SessionNotFound(session_id)
        try:
            data = self._open(session_id, "data", fields["data"])
            reasons = (
                self._open(session_id, "escalation", fields["escalation"])
                if "escalation" in fields
                else []
            )
        except SealError:
            raise SessionNotFound(session_id) from None
        last = int(fields.get("lastActivity", fields["createdAt"]))
        escalated_at = fields.get("escalatedAt")
        return Session(
            id=session_id,
            user_id=data["userId"],
            metadata=data.get("metadata", {}),
            created_at=int(fields["createdAt"]),
            last_activity=last,
            expires_at=last + self.ttl_ms,
            status=fields.get("status", b"active").decode(),
            escalated_at=int(escalated_at) if escalated_at else None,
            escalation_reasons=reasons,
        )

    async def append(self, session_id: str, entry: dict[str, Any]) -> int:
        """Add a transcript entry and slide the expiry, atomically; the new length."""
        n = await self.store.append(
            session_id, self._seal(session_id, "message", entry), self.ttl_ms
        )
        if n is None:
            raise SessionNotFound(session_id)
        return n

    async def transcript(self, session_id: str, start: int = 0, end: int = -1) -> list[dict]:
        entries = []
        for sealed in await self.store.messages(session_id, start, end):
            try:
                entries.append(self._open(session_id, "message", sealed))
            except SealError:
                continue  # sealed under a retired key: unreadable, skip rather than fail
        return entries

    async def escalate(self, session_id: str, reasons: list[dict[str, Any]]) -> bool:
        """Mark the session escalated; True only the first time (idempotent)."""
        first = await self.store.escalate(session_id, self._seal(session_id, "escalation", reasons))
        if first is None:
            raise SessionNotFound(session_id)
        return first

    async def count_active(self) -> int:
        return await self.store.count_active()
