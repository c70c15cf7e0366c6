"""Rate limits, shared by every instance: the `limits` library's moving window on the
shared Redis (in this process's memory when the service runs without Redis).

Kinds, each a `limits` string from the settings (see the README's "Rate limits"):

- `sessions`: new sessions per client address (REST and join-chat without sessionId);
- `messages`: messages per session (REST and socket);
- `requests`: every REST request under /api/ per client address;
- `socket_events`: events per customer socket connection;
- `agents`: REST requests per agent token or admin key, and events per agent socket.

Concurrent customer sockets per address are a counter (`RATE_LIMIT_SOCKETS`), not a window.

The client address is the peer, or, only when the peer is one of `TRUSTED_PROXIES`, the
right-most address in X-Forwarded-For that is not itself a trusted proxy: a header sent by
anyone else is ignored. `client_address` is the one function every door uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.config import Settings
from services.errors import RateLimited
from services.metrics import Metrics
from services.redis_client import is_cluster, parse_location

UNREACHABLE = (RedisError, StorageError, OSError)  # the counts' store is down: fail open

log = logging.getLogger(__name__)

Kind = Literal["sessions", "messages", "requests", "socket_events", "agents"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SOCKET_COUNT_TTL = 3600  # seconds a crashed instance's socket counts linger at most

# Several moving windows in one call, each as the limits library's own script does it (the
# same lists, so its reads see these counts). KEYS: the windows; ARGV: now, then each
# window's limit and expiry (s). Counts one in each in turn and stops at the first full one:
# its index (from 1), or 0 when every window took one.
HIT_MANY = """
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local expiry = tonumber(ARGV[2 * i + 1])
  local entry = redis.call('lindex', KEYS[i], limit - 1)
  if entry and tonumber(entry) >= now - expiry then return i end
  redis.call('lpush', KEYS[i], now)
  redis.call('ltrim', KEYS[i], 0, limit - 1)
  redis.call('expire', KEYS[i], expiry)
end
return 0
"""

_MESSAGES: dict[Kind, str] = {
    "sessions": "too many new sessions from this address",
    "messages": "too many messages in this session",
    "requests": "too many requests from this address",
    "socket_events": "too many events on this connection",
    "agents": "too many requests with this sign-in",
}


def parse_networks(items: Iterable[str]) -> list[Network]:
    """TRUSTED_PROXIES: IPs or CIDRs; a ValueError names a bad entry."""
    return [ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip()]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(text: str, trusted: Sequence[Network]) -> bool:
    ip = _ip(text)
    return ip is not None and any(ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: the peer, unless a trusted proxy forwarded the request."""
    address = peer or "unknown"
    if not forwarded_for or not trusted or not _trusted(address, trusted):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        if _ip(hop) is None:
            break  # garbage from the client side of the chain: stop at the last good hop
        address = hop
        if not _trusted(hop, trusted):
            break
    return address


def credential_key(secret: str) -> str:
    """A bucket name for an agent token or admin key that does not reveal it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


class RateLimits:
    """Check-and-count against the configured windows; raise RateLimited when one is full."""

    def __init__(
        self,
        storage: Storage,
        items: dict[Kind, RateLimitItem],
        *,
        counters: Redis,
        key_prefix: str,
        max_sockets: int,
        trusted: Sequence[Network] = (),
        metrics: Metrics | None = None,
        window_prefix: str | None = None,
    ) -> None:
        """`window_prefix`: the storage's key prefix when it is one Redis server (not a
        cluster, whose windows live in different slots): `hit_many` then counts several
        windows in one script."""
        self.storage = storage
        self.metrics = metrics or Metrics()  # refusals by limit
        self.limiter = MovingWindowRateLimiter(storage)
        self.items = items
        self.counters = counters
        self.key_prefix = key_prefix
        self.max_sockets = max_sockets
        self.trusted = list(trusted)
        self.window_prefix = window_prefix
        self._hit_many = counters.register_script(HIT_MANY) if window_prefix else None

    @classmethod
    def from_settings(
        cls, s: Settings, redis: Redis | None, counters: Redis, metrics: Metrics | None = None
    ) -> RateLimits:
        """On the shared Redis when there is one (its connection pool), else in memory."""
        storage: Storage
        window_prefix = None
        if redis is not None and is_cluster(redis):  # the limits library's own cluster client
            where = parse_location(s.redis_dsn, cluster=True)
            auth: dict[str, Any] = {"username": where.username, "password": where.password}
            storage = RedisClusterStorage(
                "async+redis+cluster://" + ",".join(f"{h}:{p}" for h, p in where.hosts),
                implementation="redispy",
                key_prefix=f"{s.redis_key_prefix}limits",
                **{k: v for k, v in auth.items() if v},
            )
        elif redis is not None:
            window_prefix = f"{s.redis_key_prefix}limits"
            storage = RedisStorage(
                s.redis_dsn,
                implementation="redispy",
                key_prefix=window_prefix,
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
        else:
            storage = MemoryStorage()
        items: dict[Kind, RateLimitItem] = {
            "sessions": parse(s.rate_limit_sessions),
            "messages": parse(s.rate_limit_messages),
            "requests": parse(s.rate_limit_requests),
            "socket_events": parse(s.rate_limit_socket_events),
            "agents": parse(s.rate_limit_agents),
        }
        return cls(
            storage,
            items,
            counters=counters,
            key_prefix=s.redis_key_prefix,
            max_sockets=s.rate_limit_sockets,
            trusted=parse_networks(s.trusted_proxies),
            metrics=metrics,
            window_prefix=window_prefix,
        )

    async def aclose(self) -> None:
        """Close the limits library's own cluster client; on one server the storage shares
        the app's connection pool, which the app closes."""
        if isinstance(self.storage, RedisClusterStorage):
            bridge: Any = self.storage.bridge  # the redis-py bridge holds its RedisCluster
            await bridge.storage.aclose()

    def address(self, peer: str | None, forwarded_for: str | None) -> str:
        return client_address(peer, forwarded_for, self.trusted)

    async def hit(self, kind: Kind, key: str) -> None:
        """Count one; RateLimited (with the seconds until a slot frees) when the window is full.
        If the counts cannot be reached the request goes through (fail open): the session
        store answers 503 on its own when Redis is down, and a limiter must not turn an
        outage into 500s."""
        await self._enforce(kind, key, count=True)

    async def hit_many(self, hits: Sequence[tuple[Kind, str]]) -> None:
        """Count one in each window in turn, as `hit` after `hit` would: the first full one
        raises RateLimited and the windows after it are not counted. One round trip on one
        Redis server; on a cluster or in memory, one call per window. Fails open, as hit."""
        if self._hit_many is None or self.window_prefix is None or len(hits) < 2:
            for kind, key in hits:
                await self.hit(kind, key)
            return
        keys: list[str] = []
        args: list[float | int] = [time.time()]
        for kind, key in hits:
            item = self.items[kind]
            keys.append(f"{self.window_prefix}:{item.key_for(kind, key)}")
            args += [item.amount, item.get_expiry()]
        try:
            refused = int(await self._hit_many(keys=keys, args=args))
        except UNREACHABLE as exc:
            log.warning(
                "rate limits unavailable",
                extra={"limit": ",".join(k for k, _ in hits), "error": type(exc).__name__},
            )
            return
        if refused:
            kind, key = hits[refused - 1]
            raise self._refusal(kind, await self._retry_after(self.items[kind], kind, key))

    async def check(self, kind: Kind, key: str) -> None:
        """Refuse when the window is already full, without counting (fails open, as hit)."""
        await self._enforce(kind, key, count=False)

    async def _enforce(self, kind: Kind, key: str, *, count: bool) -> None:
        item = self.items[kind]
        try:
            allowed = await (self.limiter.hit if count else self.limiter.test)(item, kind, key)
        except UNREACHABLE as exc:
            log.warning(
                "rate limits unavailable", extra={"limit": kind, "error": type(exc).__name__}
            )
            return
        if not allowed:
            raise self._refusal(kind, await self._retry_after(item, kind, key))

    async def _retry_after(self, item: RateLimitItem, kind: str, key: str) -> int:
        stats = await self.limiter.get_window_stats(item, kind, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _refusal(self, kind: Kind, retry_after: int) -> RateLimited:
        self.metrics.rate_limited[kind] += 1
        log.warning("rate limited", extra={"limit": kind, "retry_after": retry_after})
        return RateLimited(retry_after, f"{_MESSAGES[kind]}; try again in {retry_after} s")

    # -- concurrent sockets per address ------------------------------------------------
    def _socket_key(self, address: str) -> str:
        return f"{self.key_prefix}limits:sockets:{address}"

    async def open_socket(self, address: str) -> None:
        """Count a new socket of this address, or refuse it when it has too many open."""
        key = self._socket_key(address)
        try:
            async with self.counters.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, SOCKET_COUNT_TTL)
                count, _ = await pipe.execute()
        except UNREACHABLE:
            log.warning("rate limits unavailable", extra={"limit": "sockets"})
            return
        if int(count) > self.max_sockets:
            await self.counters.decr(key)
            self.metrics.rate_limited["sockets"] += 1
            log.warning("rate limited", extra={"limit": "sockets"})
            raise RateLimited(
                60,
                f"too many open connections from this address (at most {self.max_sockets})",
            )

    async def close_socket(self, address: str) -> None:
        key = self._socket_key(address)
        with contextlib.suppress(*UNREACHABLE):
            if int(await self.counters.decr(key)) <= 0:
                await self.counters.delete(key)
