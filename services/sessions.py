"""SessionManager: sessions and their transcripts, sealed at rest, over a SessionStore."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.crypto import Sealer, SealError
from services.errors import SessionNotFound
from services.store import HELD, Move, MoveResult, SessionStore, Snapshot, now_ms


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
    episode: int = 1
    context_from: int = 0
    waiting_since: int | None = None
    priority: int = 0
    assigned_to: str | None = None
    assigned_name: str | None = None
    csat_episode: int | None = None

    @property
    def held(self) -> bool:
        """A person is needed or has the conversation: the bot stays out of it."""
        return self.status in HELD

    @property
    def holder(self) -> dict[str, str] | None:
        if self.assigned_to is None:
            return None
        return {"id": self.assigned_to, "name": self.assigned_name or ""}


class SessionManager:
    def __init__(
        self,
        store: SessionStore,
        sealer: Sealer,
        *,
        ttl_ms: int,
        index_user: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.index_user = index_user  # (user id, session id): services.privacy's user index
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
        if self.index_user is not None:
            await self.index_user(user_id, session_id)
        return Session(session_id, user_id, metadata or {}, now, now, now + self.ttl_ms)

    async def get(self, session_id: str) -> Session:
        """The live session, or SessionNotFound (unknown, expired, or not ours to open)."""
        return self._live(session_id, await self.store.get(session_id))

    def _live(self, session_id: str, fields: dict[str, bytes] | None) -> Session:
        if not fields or "data" not in fields:
            raise SessionNotFound(session_id)
        return self.from_fields(session_id, fields)

    async def get_with_recent(
        self, session_id: str, count: int
    ) -> tuple[Session, list[dict[str, Any]]]:
        """The live session and its current episode's last `count` transcript entries (at
        most), read in one round trip; SessionNotFound as `get`."""
        fields, length, tail = await self.store.get_with_tail(session_id, count)
        session = self._live(session_id, fields)
        earlier = max(0, session.context_from - (length - len(tail)))  # an earlier episode's
        return session, self._open_entries(session_id, tail[earlier:])

    def from_fields(self, session_id: str, fields: dict[str, bytes]) -> Session:
        try:
            data = self._open(session_id, "data", fields["data"])
            reasons = (
                self._open(session_id, "escalation", fields["escalation"])
                if "escalation" in fields
                else []
            )
        except SealError:
            raise SessionNotFound(session_id) from None

        def number(name: str) -> int | None:
            value = fields.get(name)
            return int(value) if value else None

        def text(name: str) -> str | None:
            value = fields.get(name)
            return value.decode() if value else None

        last = number("lastActivity") or int(fields["createdAt"])
        return Session(
            id=session_id,
            user_id=data["userId"],
            metadata=data.get("metadata", {}),
            created_at=int(fields["createdAt"]),
            last_activity=last,
            expires_at=last + self.ttl_ms,
            status=fields.get("status", b"active").decode(),
            escalated_at=number("escalatedAt"),
            escalation_reasons=reasons,
            episode=number("episode") or 1,
            context_from=number("contextFrom") or 0,
            waiting_since=number("waitingSince"),
            priority=number("priority") or 0,
            assigned_to=text("assignedTo"),
            assigned_name=text("assignedName"),
            csat_episode=number("csatEpisode"),
        )

    async def append(self, session_id: str, entry: dict[str, Any]) -> int:
        """Add a transcript entry and slide the expiry, atomically; the new length."""
        n = await self.store.append(
            session_id, self._seal(session_id, "message", entry), self.ttl_ms
        )
        if n is None:
            raise SessionNotFound(session_id)
        return n

    async def transcript(
        self, session_id: str, start: int = 0, end: int = -1
    ) -> list[dict[str, Any]]:
        return self._open_entries(session_id, await self.store.messages(session_id, start, end))

    def _open_entries(self, session_id: str, sealed: list[bytes]) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for value in sealed:
            try:
                entries.append(self._open(session_id, "message", value))
            except SealError:
                continue  # sealed under a retired key: unreadable, skip rather than fail
        return entries

    def seal_entry(self, session_id: str, entry: dict[str, Any]) -> bytes:
        return self._seal(session_id, "message", entry)

    def seal_field(self, session_id: str, name: str, value: Any) -> bytes:
        return self._seal(session_id, name, value)

    def open_field(self, session_id: str, name: str, sealed: bytes) -> Any:
        """A sealed field's value, or None when it does not open."""
        try:
            return self._open(session_id, name, sealed)
        except SealError:
            return None

    def open_entry(self, session_id: str, sealed: bytes | None) -> dict[str, Any] | None:
        return None if sealed is None else self.open_field(session_id, "message", sealed)

    async def move(self, session_id: str, move: Move) -> MoveResult:
        """Apply one lifecycle step atomically; SessionNotFound if the session is gone."""
        result = await self.store.move(session_id, move, self.ttl_ms)
        if result.code == -1:
            raise SessionNotFound(session_id)
        return result

    async def set_once(self, session_id: str, name: str, value: Any) -> bool:
        return await self.store.set_once(session_id, name, self._seal(session_id, name, value))

    async def notice_due(self, session_id: str, interval_ms: int) -> bool:
        return await self.store.claim_notice(session_id, interval_ms)

    async def queue(self) -> list[Snapshot]:
        return await self.store.snapshots(await self.store.queue())

    async def snapshot(self, session_id: str) -> Snapshot:
        found = await self.store.snapshots([session_id])
        if not found or "data" not in found[0].fields:
            raise SessionNotFound(session_id)
        return found[0]

    async def count_active(self) -> int:
        return await self.store.count_active()
