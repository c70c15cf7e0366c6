"""Tickets: a conversation the team answers later, by e-mail, when nobody could take it live
(closed, or no agent online, or nobody claimed it in time).

    P {tickets}:ticket:<id>  hash  data (sealed: email, userId, reasons, transcript), sessionId,
                                   episode, status (open|closed), createdAt
    P {tickets}:index        zset  ticket id -> createdAt (ms), newest last

Both carry the hash tag `{tickets}`: a ticket and its index entry change in one transaction,
which on Redis Cluster must stay within one slot.

A session gets at most one ticket per episode (its `ticket:<episode>` field, set once);
leaving the address again updates nothing and returns the same ticket.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from services.errors import DomainError, InvalidPayload
from services.events import Events
from services.keys import ticket_index, ticket_key
from services.notifier import Notifier
from services.sessions import SessionManager, iso, new_id
from services.store import guarded, now_ms, raw, text

EMAIL = re.compile(r"^[^@ \t\r\n\f\v]+@[^@ \t\r\n\f\v]+\.[^@ \t\r\n\f\v]+$")
CSV_COLUMNS = (
    "id",
    "createdAt",
    "status",
    "email",
    "userId",
    "sessionId",
    "episode",
    "reasons",
    "lastMessage",
)


class TicketNotFound(DomainError):
    status, code, title = 404, "TICKET_NOT_FOUND", "Ticket not found"


class ContactNotRequested(DomainError):
    status, code, title = 409, "CONTACT_NOT_REQUESTED", "Nobody asked for an e-mail address"


def check_email(email: str) -> str:
    email = email.strip(" \t\r\n\f\v")
    if len(email) > 254 or not EMAIL.match(email):
        raise InvalidPayload("that does not look like an e-mail address")
    return email


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    session_id: str
    episode: int
    status: str
    created_at: int
    data: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        last = next(
            (e for e in reversed(self.data.get("transcript", [])) if e.get("role") == "user"), None
        )
        return {
            "id": self.id,
            "sessionId": self.session_id,
            "episode": self.episode,
            "status": self.status,
            "createdAt": iso(self.created_at),
            "email": self.data.get("email", ""),
            "userId": self.data.get("userId", ""),
            "reasons": self.data.get("reasons", []),
            "lastMessage": None if last is None else last["content"][:140],
        }

    def full(self) -> dict[str, Any]:
        return {**self.summary(), "transcript": self.data.get("transcript", [])}


class TicketService:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        sessions: SessionManager,
        notifier: Notifier,
        events: Events,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.sessions = sessions
        self.notifier = notifier
        self.events = events

    def _key(self, ticket_id: str) -> str:
        return ticket_key(self.prefix, ticket_id)

    @property
    def _index(self) -> str:
        return ticket_index(self.prefix)

    async def create(self, session_id: str, email: str) -> tuple[Ticket, bool]:
        """The episode's ticket, made now (True) or earlier (False)."""
        email = check_email(email)
        session = await self.sessions.get(session_id)
        if f"contact:{session.episode}" not in (await self.sessions.snapshot(session_id)).fields:
            raise ContactNotRequested("an e-mail address is taken only when nobody can answer live")
        ticket_id = new_id(9)
        if not await self.sessions.set_once(session_id, f"ticket:{session.episode}", ticket_id):
            snap = await self.sessions.snapshot(session_id)
            sealed = snap.fields[f"ticket:{session.episode}"]
            existing = self.sessions.open_field(session_id, f"ticket:{session.episode}", sealed)
            return await self.get(str(existing)), False
        transcript = [
            e for e in await self.sessions.transcript(session_id) if e.get("role") != "note"
        ]
        data = {
            "email": email,
            "userId": session.user_id,
            "reasons": session.escalation_reasons,
            "transcript": transcript,
        }
        ticket = Ticket(ticket_id, session_id, session.episode, "open", now_ms(), data)
        await self._save(ticket)
        entry = {
            "id": new_id(12),
            "role": "system",
            "content": "The customer left an e-mail address",
            "timestamp": iso(ticket.created_at),
            "event": "ticket_created",
            "by": None,
            "reason": f"ticket {ticket_id}",
            "status": session.status,
        }
        await self.sessions.append(session_id, entry)
        summary = ticket.summary()
        await self.notifier.to_agents("ticket-created", {"ticket": summary})
        await self.events.publish(
            "ticket.created",
            {
                "ticketId": ticket_id,
                "sessionId": session_id,
                "userId": session.user_id,
                "email": email,
                "reasons": session.escalation_reasons,
                "createdAt": summary["createdAt"],
                "lastMessage": summary["lastMessage"],
            },
        )
        return ticket, True

    @guarded
    async def _save(self, ticket: Ticket) -> None:
        sealed = self.sessions.seal_field(ticket.id, "ticket", ticket.data)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key(ticket.id),
                mapping={
                    "data": sealed,
                    "sessionId": ticket.session_id,
                    "episode": ticket.episode,
                    "status": ticket.status,
                    "createdAt": ticket.created_at,
                },
            )
            pipe.zadd(self._index, {ticket.id: ticket.created_at})
            await pipe.execute()

    @guarded
    async def get(self, ticket_id: str) -> Ticket:
        reply = await self.redis.hgetall(self._key(ticket_id))
        if not reply:
            raise TicketNotFound(f"no ticket {ticket_id}")
        fields = {text(k): raw(v) for k, v in reply.items()}
        data = self.sessions.open_field(ticket_id, "ticket", fields["data"]) or {}
        return Ticket(
            ticket_id,
            fields["sessionId"].decode(),
            int(fields["episode"]),
            fields["status"].decode(),
            int(fields["createdAt"]),
            data,
        )

    @guarded
    async def list(self, status: str | None = None, limit: int = 200) -> list[Ticket]:
        """Newest first."""
        ids = [text(i) for i in await self.redis.zrevrange(self._index, 0, limit - 1)]
        tickets = [await self.get(i) for i in ids]
        return [t for t in tickets if status is None or t.status == status]

    @guarded
    async def set_status(self, ticket_id: str, status: str) -> Ticket:
        await self.get(ticket_id)
        await self.redis.hset(self._key(ticket_id), "status", status)
        return await self.get(ticket_id)

    async def export_csv(self, status: str | None = None) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for ticket in await self.list(status, limit=100_000):
            row = ticket.summary()
            row["reasons"] = "; ".join(f"{r['rule']}: {r['detail']}" for r in row["reasons"])
            writer.writerow({k: _cell(v) for k, v in row.items()})
        return out.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
