"""Where sessions live: Redis (the real store) or process memory (`make run` without Redis).

Key layout in Redis, under the configurable prefix P (default `supportbot:`):

    P session:<id>           hash   data (sealed JSON), status, createdAt, lastActivity,
                                    escalatedAt, escalation (sealed JSON)
    P session:<id>:messages  list   sealed transcript entries, oldest first
    P sessions:active        zset   session id -> expiry time (ms), for counting without KEYS

Both session keys share one sliding expiry of SESSION_TIMEOUT; appending a message and
refreshing that expiry are one Lua script, so concurrent sends never lose an entry.
"""

from __future__ import annotations

import functools
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.errors import StorageUnavailable

P = ParamSpec("P")
T = TypeVar("T")

APPEND_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'lastActivity', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[4])
return n
"""

ESCALATE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[1], 'escalatedAt', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'escalated', 'escalation', ARGV[2])
return 1
"""


def now_ms() -> int:
    return int(time.time() * 1000)


def guarded(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Redis being unreachable is a domain error (503), not a crash."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StorageUnavailable(f"Redis is unreachable: {type(exc).__name__}") from exc

    return wrapper


class SessionStore(ABC):
    """The operations SessionManager needs; values are opaque (sealed) bytes."""

    backend: str

    @abstractmethod
    async def create(self, session_id: str, fields: dict[str, bytes], ttl_ms: int) -> None: ...

    @abstractmethod
    async def get(self, session_id: str) -> dict[str, bytes] | None: ...

    @abstractmethod
    async def append(self, session_id: str, entry: bytes, ttl_ms: int) -> int | None:
        """Append atomically and slide the expiry; the new length, or None if no session."""

    @abstractmethod
    async def messages(self, session_id: str, start: int = 0, end: int = -1) -> list[bytes]: ...

    @abstractmethod
    async def escalate(self, session_id: str, sealed_reasons: bytes) -> bool | None:
        """Mark escalated once: True the first time, False after, None if no session."""

    @abstractmethod
    async def count_active(self) -> int: ...

    @abstractmethod
    async def ping(self) -> float:
        """Round trip in milliseconds; raises when the store is unreachable."""

    async def aclose(self) -> None:  # noqa: B027
        pass


class RedisSessionStore(SessionStore):
    backend = "redis"

    def __init__(self, redis: Redis, prefix: str = "supportbot:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._append = redis.register_script(APPEND_SCRIPT)
        self._escalate = redis.register_script(ESCALATE_SCRIPT)

    def session_key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def messages_key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}:messages"

    @property
    def active_key(self) -> str:
        return f"{self.prefix}sessions:active"

    @guarded
    async def create(self, session_id: str, fields: dict[str, bytes], ttl_ms: int) -> None:
        key = self.session_key(session_id)
        now = now_ms()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, ttl_ms)
            pipe.zadd(self.active_key, {session_id: now + ttl_ms})
            await pipe.execute()

    @guarded
    async def get(self, session_id: str) -> dict[str, bytes] | None:
        raw = await self.redis.hgetall(self.session_key(session_id))
        return {k.decode(): v for k, v in raw.items()} if raw else None

    @guarded
    async def append(self, session_id: str, entry: bytes, ttl_ms: int) -> int | None:
        n = await self._append(
            keys=[self.session_key(session_id), self.messages_key(session_id), self.active_key],
            args=[entry, ttl_ms, now_ms(), session_id],
        )
        return None if n < 0 else int(n)

    @guarded
    async def messages(self, session_id: str, start: int = 0, end: int = -1) -> list[bytes]:
        return await self.redis.lrange(self.messages_key(session_id), start, end)

    @guarded
    async def escalate(self, session_id: str, sealed_reasons: bytes) -> bool | None:
        result = await self._escalate(
            keys=[self.session_key(session_id)], args=[now_ms(), sealed_reasons]
        )
        return None if result < 0 else bool(result)

    @guarded
    async def count_active(self) -> int:
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self.active_key, "-inf", now)
            pipe.zcard(self.active_key)
            _, count = await pipe.execute()
        return int(count)

    @guarded
    async def ping(self) -> float:
        start = time.perf_counter()
        await self.redis.ping()
        return (time.perf_counter() - start) * 1000

    async def aclose(self) -> None:
        await self.redis.aclose()


@dataclass
class _MemorySession:
    fields: dict[str, bytes]
    expires_at: int
    messages: list[bytes] = field(default_factory=list)


class MemorySessionStore(SessionStore):
    """Process memory, for a single `make run` without Redis. Nothing persists."""

    backend = "memory"

    def __init__(self) -> None:
        self._sessions: dict[str, _MemorySession] = {}

    def _live(self, session_id: str) -> _MemorySession | None:
        session = self._sessions.get(session_id)
        if session is not None and session.expires_at <= now_ms():
            del self._sessions[session_id]
            return None
        return session

    async def create(self, session_id: str, fields: dict[str, bytes], ttl_ms: int) -> None:
        self._sessions[session_id] = _MemorySession(dict(fields), now_ms() + ttl_ms)

    async def get(self, session_id: str) -> dict[str, bytes] | None:
        session = self._live(session_id)
        return dict(session.fields) if session else None

    async def append(self, session_id: str, entry: bytes, ttl_ms: int) -> int | None:
        session = self._live(session_id)
        if session is None:
            return None
        now = now_ms()
        session.messages.append(entry)
        session.fields["lastActivity"] = str(now).encode()
        session.expires_at = now + ttl_ms
        return len(session.messages)

    async def messages(self, session_id: str, start: int = 0, end: int = -1) -> list[bytes]:
        session = self._live(session_id)
        if session is None:
            return []
        n = len(session.messages)
        start = max(start + n if start < 0 else start, 0)
        end = end + n if end < 0 else min(end, n - 1)
        return session.messages[start : end + 1]

    async def escalate(self, session_id: str, sealed_reasons: bytes) -> bool | None:
        session = self._live(session_id)
        if session is None:
            return None
        if "escalatedAt" in session.fields:
            return False
        session.fields.update(
            escalatedAt=str(now_ms()).encode(), status=b"escalated", escalation=sealed_reasons
        )
        return True

    async def count_active(self) -> int:
        for session_id in list(self._sessions):
            self._live(session_id)
        return len(self._sessions)

    async def ping(self) -> float:
        return 0.0
