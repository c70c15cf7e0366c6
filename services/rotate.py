"""Re-sealing what is stored under the newest SESSION_ENCRYPTION_KEY, online.

    SESSION_ENCRYPTION_KEY=<new>,<old> make rotate-key

Every instance first runs with the new key first and the old one after it (new values
are sealed with the new key, old ones still open); this then walks the keys with SCAN
and re-seals each value that is still under an older key: session fields, transcript
entries, tickets, webhook endpoints and event bodies. Each value is replaced only if it
is unchanged since it was read (a Lua compare-and-set), so traffic may flow meanwhile:
a value the service rewrote in between is already under the new key. The SCAN cursor
is kept in `P rotate:cursor` after every batch, so an interrupted run resumes where it
stopped; the key is deleted when a run completes (on Redis Cluster each node has its own
cursor: a run there walks every node from the start and is not resumable). Afterwards the
old key can be dropped from the setting. (Agent tokens are signed with a key derived from
the newest key, so agents sign in again after a rotation unless AGENT_TOKEN_SECRET is set.)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from services.crypto import Sealer, SealError
from services.keys import TICKETS, WEBHOOKS, parse_session_key
from services.privacy import UserIndex
from services.redis_client import is_cluster, open_redis

log = logging.getLogger(__name__)

# KEYS: hash; ARGV: field, expected, new
HASH_CAS = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""

# KEYS: list; ARGV: index, expected, new
LIST_CAS = """
if redis.call('LINDEX', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('LSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""


@dataclass
class Progress:
    keys: int = 0
    resealed: int = 0
    current: int = 0  # already under the newest key
    changed: int = 0  # rewritten by the service meanwhile: left as it is
    unreadable: int = 0  # under no configured key (or not a sealed value)


class Rotator:
    def __init__(self, redis: Redis, prefix: str, sealer: Sealer, *, batch: int = 200) -> None:
        self.redis = redis
        self.prefix = prefix
        self.sealer = sealer
        self.batch = batch
        self.cursor_key = f"{prefix}rotate:cursor"
        self._hash_cas = redis.register_script(HASH_CAS)
        self._list_cas = redis.register_script(LIST_CAS)

    async def run(self) -> Progress:
        """One whole pass, resuming from a stored cursor; the counts."""
        progress = Progress()
        if is_cluster(self.redis):
            async for raw in self.redis.scan_iter(match=f"{self.prefix}*", count=self.batch):
                await self._key(_bytes(raw).decode(), progress)
            return progress
        stored = await self.redis.get(self.cursor_key)
        cursor = int(stored) if stored else 0
        while True:
            cursor, keys = await self.redis.scan(cursor, match=f"{self.prefix}*", count=self.batch)
            for raw in keys:
                await self._key(_bytes(raw).decode(), progress)
            if cursor == 0:
                break
            await self.redis.set(self.cursor_key, cursor)
        await self.redis.delete(self.cursor_key)
        return progress

    async def _key(self, key: str, progress: Progress) -> None:
        name = key[len(self.prefix) :]
        session = parse_session_key(self.prefix, key)
        ticket = TICKETS + "ticket:"
        if session is not None and session[1] == "messages":
            sid = session[0]
            await self._list(key, lambda: f"{sid}|message".encode(), progress)
        elif session is not None and session[1] == "":
            sid = session[0]
            await self._hash(key, lambda f: f"{sid}|{f}".encode(), progress)
            await self._reindex(key, sid)
        elif name.startswith(ticket):
            tid = name[len(ticket) :]
            await self._hash(key, lambda f: f"{tid}|{f}".encode(), progress, only=("data",))
        elif name == WEBHOOKS + "endpoints":
            await self._hash(key, lambda f: f"webhook-endpoint:{f}".encode(), progress)
        elif name.startswith(WEBHOOKS + "event:"):
            eid = name[len(WEBHOOKS + "event:") :]
            aad = f"webhook-event:{eid}".encode()
            await self._hash(key, lambda f: aad, progress, only=("body",))
        else:
            return
        progress.keys += 1

    async def _hash(
        self,
        key: str,
        aad: Callable[[str], bytes],
        progress: Progress,
        only: tuple[str, ...] | None = None,
    ) -> None:
        fields = await self.redis.hgetall(key)
        for raw_name, raw_value in fields.items():
            name, value = _bytes(raw_name).decode(), _bytes(raw_value)
            if only is not None and name not in only:
                continue
            if not self.sealer.looks_sealed(value):
                continue  # a plain field (status, timestamps, ids)
            new = self._reseal(value, aad(name), progress)
            if new is not None:
                done = await self._hash_cas(keys=[key], args=[name, value, new])
                self._count(bool(done), progress)

    async def _list(self, key: str, aad: Callable[[], bytes], progress: Progress) -> None:
        entries = await self.redis.lrange(key, 0, -1)
        for index, raw in enumerate(entries):
            value = _bytes(raw)
            new = self._reseal(value, aad(), progress)
            if new is not None:
                done = await self._list_cas(keys=[key], args=[index, value, new])
                self._count(bool(done), progress)

    async def _reindex(self, key: str, session_id: str) -> None:
        """The user index under the newest key (services.privacy looks under every key)."""
        sealed = await self.redis.hget(key, "data")
        if sealed is None:
            return
        try:
            data = json.loads(self.sealer.open(_bytes(sealed), f"{session_id}|data".encode()))
        except (SealError, TypeError, ValueError):
            return
        users = UserIndex(self.redis, self.prefix, self.sealer.derive_all("user-index"))
        await users.add(str(data.get("userId", "")), session_id)

    def _reseal(self, value: bytes, aad: bytes, progress: Progress) -> bytes | None:
        if self.sealer.is_current(value):
            progress.current += 1
            return None
        try:
            plain = self.sealer.open(value, aad)
        except SealError:
            progress.unreadable += 1
            return None
        return self.sealer.seal(plain, aad)

    @staticmethod
    def _count(done: bool, progress: Progress) -> None:
        if done:
            progress.resealed += 1
        else:
            progress.changed += 1


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def main() -> int:
    from services.config import load_settings
    from services.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.pii_phone_region)
    if settings.session_encryption_key is None:
        log.error("SESSION_ENCRYPTION_KEY is not set: nothing to rotate to")
        return 2
    sealer = Sealer.from_setting(settings.session_encryption_key.get_secret_value())
    redis = open_redis(settings.redis_dsn, cluster=settings.redis_cluster)
    try:
        progress = await Rotator(redis, settings.redis_key_prefix, sealer).run()
    finally:
        await redis.aclose()
    log.info("rotation done", extra=vars(progress))
    print(
        f"re-sealed {progress.resealed} values in {progress.keys} keys; "
        f"{progress.current} already current, {progress.changed} changed meanwhile, "
        f"{progress.unreadable} unreadable"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
