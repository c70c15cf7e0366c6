"""The analytics keys in Redis, built in one place and safe on Redis Cluster: no script
or transaction touches two hash slots.

- `P analytics:{an:<day>}`: one hash of counters per day of ANALYTICS_TIMEZONE; each
  field also exists per hour as `HH@field` (the day's tag keeps them in one slot);
- `P analytics:{anu}:<day>` and `:<day>THH`: HyperLogLogs of the customers who wrote
  (one tag, so PFCOUNT can merge a range of days);
- `P analytics:ep:{<session id>}`: the session's current episode (the session's own tag),
  changed only by a compare-and-set script on its version;
- `P analytics:{and}:due`: sessions whose outcome settles at a time (score, ms);
- `P analytics:{ang}:q` / `:idx`: unanswered questions (redacted) and their times.
Counters are applied after the episode's compare-and-set, in a plain pipeline.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from services.analytics.episodes import Effects, Episode

DAY_TTL = 400 * 86_400  # counters outlive a year's comparison
CAS = """
local v = redis.call('HGET', KEYS[1], 'v') or ''
if v ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


def episode_key(prefix: str, session_id: str) -> str:
    """The session's current episode (the session's own hash tag)."""
    return f"{prefix}analytics:ep:{{{session_id}}}"


def due_key(prefix: str) -> str:
    """Sessions whose outcome settles at a time (score, ms)."""
    return f"{prefix}analytics:{{and}}:due"


class AnalyticsStore:
    def __init__(self, redis: Redis, prefix: str, zone: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.base = f"{prefix}analytics:"
        self.zone = ZoneInfo(zone)
        self._cas = redis.register_script(CAS)

    # -- keys and calendar -------------------------------------------------------------
    def local(self, at_ms: int) -> datetime:
        return datetime.fromtimestamp(at_ms / 1000, self.zone)

    def day_key(self, day: date) -> str:
        return f"{self.base}{{an:{day.isoformat()}}}"

    def users_key(self, day: date, hour: int | None = None) -> str:
        suffix = "" if hour is None else f"T{hour:02d}"
        return f"{self.base}{{anu}}:{day.isoformat()}{suffix}"

    def episode_key(self, session_id: str) -> str:
        return episode_key(self.prefix, session_id)

    @property
    def due_key(self) -> str:
        return due_key(self.prefix)

    @property
    def questions_key(self) -> str:
        return f"{self.base}{{ang}}:q"

    @property
    def questions_index(self) -> str:
        return f"{self.base}{{ang}}:idx"

    # -- counting ----------------------------------------------------------------------
    async def count(
        self,
        effects: Effects,
        *,
        dues: dict[str, int | None] | None = None,
        customers: Iterable[tuple[int, str]] = (),
    ) -> None:
        """In one round trip (a plain pipeline, no transaction: the keys live in several
        slots): add the effects into the day hashes (each field also under its hour; the
        same field of the same hour added once), set when sessions' outcomes settle
        (`dues`: session id -> ms, or None for no longer), and add customers (ms, user id)
        to the HyperLogLogs."""
        days: dict[str, Counter[str]] = {}
        for at, fields in effects.counts:
            when = self.local(at)
            total = days.setdefault(self.day_key(when.date()), Counter())
            hour = f"{when.hour:02d}@"
            for name, amount in fields.items():
                total[name] += amount
                total[hour + name] += amount
        users: dict[str, set[str]] = {}
        for at, user_id in customers:
            when = self.local(at)
            member = hashlib.sha256(user_id.encode()).hexdigest()[:24]  # no user id
            for key in (self.users_key(when.date()), self.users_key(when.date(), when.hour)):
                users.setdefault(key, set()).add(member)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, fields in days.items():
                for name, amount in fields.items():
                    if amount:
                        pipe.hincrby(key, name, amount)
                pipe.expire(key, DAY_TTL)
            for session_id, at_ms in (dues or {}).items():
                if at_ms is None:
                    pipe.zrem(self.due_key, session_id)
                else:
                    pipe.zadd(self.due_key, {session_id: at_ms})
            for key, members in users.items():
                pipe.pfadd(key, *sorted(members))
                pipe.expire(key, DAY_TTL)
            if len(pipe):
                await pipe.execute()

    # -- episodes ----------------------------------------------------------------------
    async def load(self, session_id: str) -> Episode:
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.episode_key(session_id))  # type: ignore[assignment]
        return Episode.load(raw)

    async def load_many(self, session_ids: list[str]) -> dict[str, Episode]:
        """Several sessions' episodes in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.hgetall(self.episode_key(session_id))
            rows = await pipe.execute()
        return {sid: Episode.load(raw) for sid, raw in zip(session_ids, rows, strict=True)}

    @staticmethod
    def _cas_args(episode: Episode, ttl_ms: int) -> list[Any]:
        fields = {**episode.dump(), "v": str(int(episode.version or 0) + 1)}
        args: list[Any] = [episode.version, ttl_ms]
        for name, value in fields.items():
            args += [name, value]
        return args

    async def save(self, session_id: str, episode: Episode, ttl_ms: int) -> bool:
        """Compare-and-set on the version read: False when another writer came first."""
        args = self._cas_args(episode, ttl_ms)
        return bool(await self._cas(keys=[self.episode_key(session_id)], args=args))

    async def save_many(self, episodes: list[tuple[str, Episode]], ttl_ms: int) -> dict[str, bool]:
        """Compare-and-set several episodes in one round trip (one script per session, on
        its own key: EVAL, so a pipeline split over cluster nodes needs no loaded script)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id, episode in episodes:
                pipe.eval(CAS, 1, self.episode_key(session_id), *self._cas_args(episode, ttl_ms))
            done = await pipe.execute()
        return {sid: bool(ok) for (sid, _), ok in zip(episodes, done, strict=True)}

    async def due(self, now: int, limit: int) -> list[str]:
        raw = await self.redis.zrangebyscore(self.due_key, "-inf", now, start=0, num=limit)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in raw]

    # -- reading -----------------------------------------------------------------------
    async def days(self, days: Iterable[date]) -> dict[date, Counter[str]]:
        days = list(days)
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(self.day_key(day))
            rows = await pipe.execute()
        return {
            day: Counter({k.decode(): int(v) for k, v in row.items()})
            for day, row in zip(days, rows, strict=True)
        }

    async def distinct(self, keys: list[str]) -> int:
        return int(await self.redis.pfcount(*keys)) if keys else 0

    # -- unanswered questions ------------------------------------------------------------
    async def add_question(self, qid: str, record: dict[str, Any], at: int) -> None:
        await self.add_questions([(qid, record, at)])

    async def add_questions(self, items: list[tuple[str, dict[str, Any], int]]) -> None:
        """Questions (id, record, ms) and their times, in one transaction (one slot: {ang})."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for qid, record, at in items:
                pipe.hset(self.questions_key, qid, json.dumps(record, ensure_ascii=False))
                pipe.zadd(self.questions_index, {qid: at})
            await pipe.execute()

    async def questions(self, start: int, end: int) -> list[dict[str, Any]]:
        ids: list[bytes] = await self.redis.zrangebyscore(self.questions_index, start, end)  # type: ignore[assignment]
        if not ids:
            return []
        rows = await self.redis.hmget(self.questions_key, ids)
        return [json.loads(row) for row in rows if row]

    async def forget_questions(self, before: int) -> int:
        ids = await self.redis.zrangebyscore(self.questions_index, "-inf", before)
        if not ids:
            return 0
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.questions_key, *ids)
            pipe.zrem(self.questions_index, *ids)
            await pipe.execute()
        return len(ids)


def day_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
