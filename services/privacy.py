"""Erasure, export and retention of a customer's conversations.

Keys (under the prefix P) this service removes, besides those listed in services.store,
services.tickets and services.routing:

    P user:<hmac(userId)>   set    the user's session ids; the member is a keyed hash
                                   (HMAC-SHA256 under a key derived from the sealing key),
                                   so the index names nobody
    P retention:lock        string held by the instance running a retention sweep
    P limits:…<sessionId>…  the rate limiter's per-session counters (services/guard/limits.py)

Erasing a session deletes its hash (data, escalation, ratings, contact and ticket
fields), transcript, notice and declined keys, its entries in the active set and the
queue, every ticket and knowledge proposal (services/assist/proposals.py) made from it, and
its id in the user index. Counters and aggregates (metrics, the daily token count) stay;
contents go.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
from collections.abc import Collection, Sequence
from typing import Any, Protocol

from redis.asyncio import Redis

from services.analytics import store as analytics_keys
from services.background import Periodic
from services.errors import SessionNotFound
from services.keys import parse_session_key, session_key, ticket_index, ticket_key
from services.sessions import SessionManager, iso
from services.store import guarded, now_ms

log = logging.getLogger(__name__)

INTERNAL_ROLES = ("note",)
DAY_MS = 86_400_000
BATCH = 200

# KEYS: lock; ARGV: token. Release only a lock we still hold.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ProposalStore(Protocol):
    """The knowledge proposals made from conversations (services.assist.proposals fits)."""

    async def erase_sessions(self, session_ids: Collection[str]) -> int: ...
    async def drop_older(self, cutoff: int) -> int: ...


class UserIndex:
    """Which sessions belong to a user, keyed by a keyed hash of the user id."""

    def __init__(self, redis: Redis, prefix: str, keys: Sequence[bytes]) -> None:
        self.redis = redis
        self.prefix = prefix
        self.keys = list(keys)  # the first hashes new entries; all are looked up

    def key(self, user_id: str, hash_key: bytes | None = None) -> str:
        digest = hmac.new(hash_key or self.keys[0], user_id.encode(), hashlib.sha256)
        return f"{self.prefix}user:{digest.hexdigest()}"

    def all_keys(self, user_id: str) -> list[str]:
        return list(dict.fromkeys(self.key(user_id, k) for k in self.keys))

    @guarded
    async def add(self, user_id: str, session_id: str) -> None:
        await self.redis.sadd(self.key(user_id), session_id)

    @guarded
    async def sessions(self, user_id: str) -> set[str]:
        found: set[str] = set()
        for key in self.all_keys(user_id):
            found |= {_text(m) for m in await self.redis.smembers(key)}
        return found


class PrivacyService:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        sessions: SessionManager,
        users: UserIndex,
        retention_days: float | None = None,
        interval: float = 3600.0,
        proposals: ProposalStore | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.sessions = sessions
        self.users = users
        self.proposals = proposals
        self.retention_ms = None if retention_days is None else int(retention_days * DAY_MS)
        self.interval = interval
        self._retention = Periodic("retention sweep", self.interval, self.sweep)

    # -- erasure ---------------------------------------------------------------------
    async def erase_session(self, session_id: str) -> None:
        """Remove everything of one session, its tickets and knowledge proposals included;
        SessionNotFound if there is none."""
        await self._erase_one(session_id)
        await self._erase_proposals([session_id])

    async def _erase_one(self, session_id: str, *, tickets: bool = True) -> None:
        fields = await self.sessions.store.get(session_id)
        if not fields:
            raise SessionNotFound(session_id)
        user_id = None
        if "data" in fields:
            data = self.sessions.open_field(session_id, "data", fields["data"])
            user_id = data.get("userId") if isinstance(data, dict) else None
        await self._erase(session_id, fields, user_id, tickets=tickets)
        log.info("session erased", extra={"session": session_id[:8]})

    async def erase_user(self, user_id: str) -> int:
        """Remove every session (and ticket) of a user; how many sessions were found."""
        ids = await self.users.sessions(user_id)
        for session_id in ids:
            fields = await self.sessions.store.get(session_id) or {}
            await self._erase(session_id, fields, user_id)
        await self._delete(*self.users.all_keys(user_id))
        await self._erase_tickets(user_id=user_id)  # tickets whose session expired before
        await self._erase_proposals(ids)
        log.info("user erased", extra={"sessions": len(ids)})
        return len(ids)

    async def _erase(
        self,
        session_id: str,
        fields: dict[str, bytes],
        user_id: str | None,
        *,
        tickets: bool = True,
    ) -> None:
        ticket_ids = set()
        for name, value in fields.items():
            if name.startswith("ticket:"):
                tid = self.sessions.open_field(session_id, name, value)
                if isinstance(tid, str):
                    ticket_ids.add(tid)
        base = session_key(self.prefix, session_id)
        parts = (f"{base}:{part}" for part in ("messages", "notice", "declined"))
        await self._delete(base, *parts)
        await self._delete(analytics_keys.episode_key(self.prefix, session_id))
        await self._zrem(session_id)
        if user_id is not None:
            for key in self.users.all_keys(user_id):
                await self.redis.srem(key, session_id)
        if tickets:
            await self._erase_tickets(session_id=session_id, known=frozenset(ticket_ids))
        await self._erase_counters(session_id)

    async def _erase_proposals(self, session_ids: Collection[str]) -> int:
        if self.proposals is None or not session_ids:
            return 0
        return await self.proposals.erase_sessions(session_ids)

    @guarded
    async def _erase_counters(self, session_id: str) -> None:
        """The rate limiter's per-session window counters name the session id (a credential):
        a SCAN (erasure is rare) finds them; they would expire within their window anyway."""
        pattern = f"{self.prefix}limits:*{_glob(session_id)}*"
        doomed = [key async for key in self.redis.scan_iter(match=pattern, count=1000)]
        if doomed:
            await self.redis.delete(*doomed)

    @guarded
    async def _delete(self, *keys: str) -> None:
        await self.redis.delete(*keys)

    @guarded
    async def _zrem(self, session_id: str) -> None:
        # global sets in different hash slots: not one transaction (each ZREM is idempotent)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(f"{self.prefix}sessions:active", session_id)
            pipe.zrem(f"{self.prefix}queue", session_id)
            pipe.zrem(analytics_keys.due_key(self.prefix), session_id)
            await pipe.execute()

    @guarded
    async def _erase_tickets(
        self,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        known: frozenset[str] = frozenset(),
    ) -> None:
        """Delete the given tickets and every ticket of that session or user (a scan of the
        ticket index: tickets outlive their sessions)."""
        doomed = set(known)
        index = ticket_index(self.prefix)
        ids = [_text(i) for i in await self.redis.zrange(index, 0, -1)]
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            async with self.redis.pipeline(transaction=False) as pipe:
                for tid in chunk:
                    pipe.hmget(ticket_key(self.prefix, tid), ["sessionId", "data"])
                rows = await pipe.execute()
            for tid, (sid, sealed) in zip(chunk, rows, strict=True):
                if session_id is not None and sid is not None and _text(sid) == session_id:
                    doomed.add(tid)
                elif user_id is not None and sealed is not None:
                    data = self.sessions.open_field(tid, "ticket", sealed)
                    if isinstance(data, dict) and data.get("userId") == user_id:
                        doomed.add(tid)
        for tid in doomed:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(ticket_key(self.prefix, tid))
                pipe.zrem(index, tid)
                await pipe.execute()

    # -- export ----------------------------------------------------------------------
    async def export(self, session_id: str) -> dict[str, Any]:
        """The customer's own copy: the session's data and transcript, without notes."""
        session = await self.sessions.get(session_id)
        transcript = await self.sessions.transcript(session_id)
        return {
            "sessionId": session.id,
            "userId": session.user_id,
            "createdAt": iso(session.created_at),
            "exportedAt": iso(now_ms()),
            "status": session.status,
            "messages": [
                {
                    "role": str(e.get("role", "")),
                    "content": str(e.get("content", "")),
                    "timestamp": str(e.get("timestamp", "")),
                }
                for e in transcript
                if e.get("role") not in INTERNAL_ROLES
            ],
        }

    @staticmethod
    def as_text(export: dict[str, Any]) -> str:
        lines = [
            f"Conversation {export['sessionId']} (user {export['userId']})",
            f"Started {export['createdAt']}, exported {export['exportedAt']}",
            "",
        ]
        lines += [f"[{m['timestamp']}] {m['role']}: {m['content']}" for m in export["messages"]]
        return "\n".join(lines) + "\n"

    # -- retention -------------------------------------------------------------------
    async def sweep(self, now: int | None = None) -> dict[str, int]:
        """One retention pass: resolved conversations whose last activity, closed tickets
        whose creation, and knowledge proposals whose creation is older than
        TRANSCRIPT_RETENTION_DAYS are erased (a ticket still open stays, even when its
        conversation goes; an erased conversation's proposals go with it). Runs on one
        instance at a time (a Redis lock); every deletion is per item and idempotent besides."""
        none = {"sessions": 0, "tickets": 0, "proposals": 0}
        if self.retention_ms is None:
            return none
        now = now_ms() if now is None else now
        cutoff = now - self.retention_ms
        lock, token = f"{self.prefix}retention:lock", secrets.token_hex(8)
        if not await self.redis.set(lock, token, nx=True, px=10 * 60_000):
            return none
        try:
            swept = await self._sweep_sessions(cutoff)
            tickets = await self._sweep_tickets(cutoff)
            proposals = await self._erase_proposals(swept)
            if self.proposals is not None:
                proposals += await self.proposals.drop_older(cutoff)
        finally:
            await self.redis.eval(RELEASE, 1, lock, token)
        done = {"sessions": len(swept), "tickets": tickets, "proposals": proposals}
        if any(done.values()):
            log.info("retention sweep", extra=done)
        return done

    async def _sweep_sessions(self, cutoff: int) -> list[str]:
        """The resolved sessions erased (their proposals are left to the caller)."""
        swept: list[str] = []
        pattern = f"{self.prefix}session:*"
        async for raw in self.redis.scan_iter(match=pattern, count=BATCH, _type="HASH"):
            key = _text(raw)
            parsed = parse_session_key(self.prefix, key)
            if parsed is None or parsed[1]:
                continue
            session_id = parsed[0]
            status, last = await self.redis.hmget(key, ["status", "lastActivity"])
            if status == b"resolved" and last is not None and int(last) < cutoff:
                with contextlib.suppress(SessionNotFound):
                    await self._erase_one(session_id, tickets=False)  # they have their own rule
                    swept.append(session_id)
        return swept

    async def _sweep_tickets(self, cutoff: int) -> int:
        index = ticket_index(self.prefix)
        old = [_text(i) for i in await self.redis.zrangebyscore(index, "-inf", cutoff)]
        count = 0
        for tid in old:
            key = ticket_key(self.prefix, tid)
            if await self.redis.hget(key, "status") == b"closed":
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.delete(key)
                    pipe.zrem(index, tid)
                    await pipe.execute()
                count += 1
        return count

    def start(self) -> None:
        if self.retention_ms is not None:
            self._retention.start()

    async def aclose(self) -> None:
        await self._retention.aclose()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _glob(text: str) -> str:
    """`text` as a literal inside a SCAN MATCH pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
