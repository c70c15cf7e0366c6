"""Where sessions live: Redis, or an in-process Redis (fakeredis) for `make run` without one.

Key layout, under the configurable prefix P (default `supportbot:`):

    P session:{<id>}         hash   data (sealed JSON), status, createdAt, lastActivity,
                                    episode, contextFrom, escalatedAt, waitingSince, priority,
                                    escalation (sealed JSON), assignedTo, assignedName,
                                    csatEpisode, csat:<episode> (sealed JSON)
    P session:{<id>}:messages list  sealed transcript entries, oldest first
    P session:{<id>}:notice  string present while a queue notice was sent recently
    P sessions:active        zset   session id -> expiry time (ms; +inf while a person is
                                    needed), for counting without KEYS
    P queue                  zset   escalated and assigned sessions; score orders the queue

Both session keys share one sliding expiry of SESSION_TIMEOUT, except while the
conversation is `escalated` or `assigned`: then they do not expire at all. Appending a
message and refreshing that expiry are one Lua script, and so is every lifecycle step
(check the state, append the system entry, update the fields, the queue and the expiry),
so concurrent sends and concurrent claims never lose or double anything.

On Redis Cluster a script may touch one hash slot only: the session's keys share the tag
`{<id>}` (services/keys.py), and the global `sessions:active` and `queue` are updated right
after the script, in a second step computed from its answer (idempotent: a ZADD or ZREM of
the session's own member). On one server (or Sentinel) the same scripts are also handed the
global keys and do it all in one step.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ClusterError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.errors import StorageUnavailable
from services.keys import session_key, session_part
from services.redis_client import is_cluster

P = ParamSpec("P")
# Redis is unreachable: a server or node down, or (on a cluster) no node answers for a slot
UNREACHABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisClusterException,
    ClusterError,
    OSError,
)
T = TypeVar("T")

HELD = ("escalated", "assigned")  # a person is needed: the conversation must not expire
TAIL = 6  # transcript entries read with a snapshot, for the queue's last-message preview

# KEYS: session, messages, [active: only when not on a cluster]; ARGV: entry, ttl, now, id
# Returns {length, 1 when a person holds it (no expiry) else 0}, or {-1, 0} for no session.
APPEND_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
local n = redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'lastActivity', ARGV[3])
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'escalated' or st == 'assigned' then
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
  if KEYS[3] then redis.call('ZADD', KEYS[3], '+inf', ARGV[4]) end
  return {n, 1}
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if KEYS[3] then redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[4]) end
return {n, 0}
"""

# A session's fields, its transcript's length and its last ARGV[1] entries, read together:
# one round trip, and the length numbers the entries (the keys share a hash tag).
# Returns {fields as a flat list, length, entries}; {{}, 0, {}} for no session.
READ_SCRIPT = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return {fields, 0, {}} end
local n = redis.call('LLEN', KEYS[2])
local tail = {}
if tonumber(ARGV[1]) > 0 then tail = redis.call('LRANGE', KEYS[2], -tonumber(ARGV[1]), -1) end
return {fields, n, tail}
"""

# One lifecycle step, all or nothing.
# KEYS: session, messages, [queue, active: only when not on a cluster]
# ARGV: 1 allowed states as ",a,b,"   2 required holder ("" = anyone)   3 new status
#       4 now (ms)   5 ttl (ms)   6 session id   7 queue: add|rem|keep   8 queue score
#       9 sealed entry ("" = none)   10 flags: e = next episode, c = context starts here,
#         r = this episode awaits a rating
#       11 number of fields to set, then field/value pairs, then fields to delete
# Returns {code, previous status, holder id, holder name, transcript length, episode}:
#       code 1 done, -1 no session, -2 not allowed from this state, -3 not the holder.
TRANSITION_SCRIPT = """
local s = KEYS[1]
if redis.call('EXISTS', s) == 0 then return {-1, '', '', '', 0, 0} end
local st = redis.call('HGET', s, 'status') or 'active'
local holder = redis.call('HGET', s, 'assignedTo') or ''
local hname = redis.call('HGET', s, 'assignedName') or ''
local n = redis.call('LLEN', KEYS[2])
local ep = tonumber(redis.call('HGET', s, 'episode') or '1')
if not string.find(ARGV[1], ',' .. st .. ',', 1, true) then
  return {-2, st, holder, hname, n, ep}
end
if ARGV[2] ~= '' and holder ~= '' and holder ~= ARGV[2] then
  return {-3, st, holder, hname, n, ep}
end
if ARGV[9] ~= '' then n = redis.call('RPUSH', KEYS[2], ARGV[9]) end
redis.call('HSET', s, 'status', ARGV[3], 'lastActivity', ARGV[4])
local i = 12
for _ = 1, tonumber(ARGV[11]) do
  redis.call('HSET', s, ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', s, ARGV[i])
  i = i + 1
end
if string.find(ARGV[10], 'e', 1, true) then
  ep = ep + 1
  redis.call('HSET', s, 'episode', ep)
end
if string.find(ARGV[10], 'c', 1, true) then redis.call('HSET', s, 'contextFrom', n) end
if string.find(ARGV[10], 'r', 1, true) then redis.call('HSET', s, 'csatEpisode', ep) end
if KEYS[3] and ARGV[7] == 'add' then
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[6])
elseif KEYS[3] and ARGV[7] == 'rem' then
  redis.call('ZREM', KEYS[3], ARGV[6])
end
if ARGV[3] == 'escalated' or ARGV[3] == 'assigned' then
  redis.call('PERSIST', s)
  redis.call('PERSIST', KEYS[2])
  if KEYS[4] then redis.call('ZADD', KEYS[4], '+inf', ARGV[6]) end
else
  redis.call('PEXPIRE', s, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  if KEYS[4] then redis.call('ZADD', KEYS[4], tonumber(ARGV[4]) + tonumber(ARGV[5]), ARGV[6]) end
end
return {1, st, holder, hname, n, ep}
"""


def now_ms() -> int:
    return int(time.time() * 1000)


def guarded(method: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Redis being unreachable is a domain error (503), not a crash."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except UNREACHABLE as exc:
            raise StorageUnavailable(f"Redis is unreachable: {type(exc).__name__}") from exc

    return wrapper


@dataclass(frozen=True, slots=True)
class Move:
    """One lifecycle step as the store applies it (the rules live in services.conversations)."""

    allowed: tuple[str, ...]
    to: str
    holder: str = ""  # when set, a held conversation must be held by this agent
    queue: str = "keep"  # add | rem | keep
    score: float = 0.0
    entry: bytes = b""
    next_episode: bool = False
    context_here: bool = False
    rate_episode: bool = False
    set_fields: tuple[tuple[str, str | bytes], ...] = ()
    del_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MoveResult:
    code: int
    previous: str
    holder_id: str
    holder_name: str
    length: int
    episode: int

    @property
    def done(self) -> bool:
        return self.code == 1


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A session's fields, its last few transcript entries and its length, in one round trip."""

    session_id: str
    fields: dict[str, bytes]
    tail: list[bytes]  # the last TAIL entries, oldest first
    length: int


class SessionStore:
    """The operations SessionManager needs over Redis; values are opaque (sealed) bytes."""

    def __init__(
        self, redis: Redis, prefix: str = "supportbot:", *, backend: str = "redis"
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.backend = backend  # "redis", or "memory" for the in-process fallback
        self.cluster = is_cluster(redis)  # scripts then leave the global sets to a 2nd step
        self._append = redis.register_script(APPEND_SCRIPT)
        self._read = redis.register_script(READ_SCRIPT)
        self._transition = redis.register_script(TRANSITION_SCRIPT)

    def session_key(self, session_id: str) -> str:
        return session_key(self.prefix, session_id)

    def messages_key(self, session_id: str) -> str:
        return session_part(self.prefix, session_id, "messages")

    @property
    def active_key(self) -> str:
        return f"{self.prefix}sessions:active"

    @property
    def queue_key(self) -> str:
        return f"{self.prefix}queue"

    @guarded
    async def create(self, session_id: str, fields: dict[str, bytes], ttl_ms: int) -> None:
        key = self.session_key(session_id)
        now = now_ms()
        async with self.redis.pipeline(transaction=not self.cluster) as pipe:
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            pipe.pexpire(key, ttl_ms)
            pipe.zadd(self.active_key, {session_id: now + ttl_ms})
            await pipe.execute()

    @guarded
    async def get(self, session_id: str) -> dict[str, bytes] | None:
        raw = await self.redis.hgetall(self.session_key(session_id))
        return {_text(k): _raw(v) for k, v in raw.items()} if raw else None

    @guarded
    async def get_with_tail(
        self, session_id: str, count: int
    ) -> tuple[dict[str, bytes] | None, int, list[bytes]]:
        """The session's fields (None if no session), its transcript's length and the last
        `count` entries, in one round trip."""
        keys = [self.session_key(session_id), self.messages_key(session_id)]
        flat, length, tail = await self._read(keys=keys, args=[max(0, count)])
        if not flat:
            return None, 0, []
        fields = {_text(flat[i]): _raw(flat[i + 1]) for i in range(0, len(flat), 2)}
        return fields, int(length), [_raw(m) for m in tail]

    @guarded
    async def append(self, session_id: str, entry: bytes, ttl_ms: int) -> int | None:
        """Append atomically and slide the expiry; the new length, or None if no session."""
        now = now_ms()
        keys = [self.session_key(session_id), self.messages_key(session_id)]
        n, held = await self._append(
            keys=keys if self.cluster else [*keys, self.active_key],
            args=[entry, ttl_ms, now, session_id],
        )
        if n < 0:
            return None
        if self.cluster:
            expiry = float("inf") if held else now + ttl_ms
            await self.redis.zadd(self.active_key, {session_id: expiry})
        return int(n)

    @guarded
    async def messages(self, session_id: str, start: int = 0, end: int = -1) -> list[bytes]:
        return [_raw(m) for m in await self.redis.lrange(self.messages_key(session_id), start, end)]

    @guarded
    async def move(self, session_id: str, move: Move, ttl_ms: int) -> MoveResult:
        """Apply one lifecycle step atomically (see TRANSITION_SCRIPT)."""
        pairs: list[str | bytes] = []
        for name, value in move.set_fields:
            pairs += [name, value]
        flags = (
            ("e" if move.next_episode else "")
            + ("c" if move.context_here else "")
            + ("r" if move.rate_episode else "")
        )
        now = now_ms()
        keys = [self.session_key(session_id), self.messages_key(session_id)]
        raw = await self._transition(
            keys=keys if self.cluster else [*keys, self.queue_key, self.active_key],
            args=[
                "," + ",".join(move.allowed) + ",",
                move.holder,
                move.to,
                now,
                ttl_ms,
                session_id,
                move.queue,
                repr(move.score),
                move.entry,
                flags,
                len(move.set_fields),
                *pairs,
                *move.del_fields,
            ],
        )
        code, previous, holder, name, length, episode = raw
        if self.cluster and int(code) == 1:
            await self._after_move(session_id, move, now + ttl_ms)
        return MoveResult(
            int(code), _text(previous), _text(holder), _text(name), int(length), int(episode)
        )

    async def _after_move(self, session_id: str, move: Move, expiry: float) -> None:
        """The global sets' share of a step done on a cluster (each command idempotent)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            if move.queue == "add":
                pipe.zadd(self.queue_key, {session_id: move.score})
            elif move.queue == "rem":
                pipe.zrem(self.queue_key, session_id)
            held = move.to in HELD
            pipe.zadd(self.active_key, {session_id: float("inf") if held else expiry})
            await pipe.execute()

    @guarded
    async def set_once(self, session_id: str, name: str, value: bytes) -> bool:
        """Set a session field only if it is not set yet; False when it was."""
        return bool(await self.redis.hsetnx(self.session_key(session_id), name, value))

    @guarded
    async def claim_notice(self, session_id: str, interval_ms: int) -> bool:
        """True at most once per interval per session (for queue notices)."""
        if interval_ms <= 0:
            return True
        key = session_part(self.prefix, session_id, "notice")
        return bool(await self.redis.set(key, b"1", nx=True, px=interval_ms))

    @guarded
    async def queue(self) -> list[str]:
        """Escalated and assigned sessions, in queue order."""
        return [_text(m) for m in await self.redis.zrange(self.queue_key, 0, -1)]

    @guarded
    async def snapshots(self, session_ids: Sequence[str]) -> list[Snapshot]:
        """Fields, last entry and length of each session that still exists, in one round trip."""
        if not session_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in session_ids:
                pipe.hgetall(self.session_key(sid))
                pipe.lrange(self.messages_key(sid), -TAIL, -1)
                pipe.llen(self.messages_key(sid))
            raw = await pipe.execute()
        out = []
        for i, sid in enumerate(session_ids):
            fields, tail, length = raw[3 * i : 3 * i + 3]
            if fields:
                out.append(Snapshot(sid, {k.decode(): v for k, v in fields.items()}, tail, length))
        return out

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
        """Round trip in milliseconds; raises when the store is unreachable."""
        start = time.perf_counter()
        await self.redis.ping()
        return (time.perf_counter() - start) * 1000

    async def aclose(self) -> None:
        await self.redis.aclose()


def _text(value: object) -> str:
    """A Redis reply as text (replies are bytes unless a client decodes them)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _raw(value: object) -> bytes:
    """A Redis reply as bytes (sealed values are binary)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"unexpected Redis reply {type(value).__name__}")


text, raw = _text, _raw  # for the other stores
