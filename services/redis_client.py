"""The one place that turns the Redis settings into a client: one server, a Cluster or Sentinel.

    REDIS_URL=redis://host:6379/0                   one server (or REDIS_HOST/REDIS_PORT/...)
    REDIS_CLUSTER=true REDIS_URL=redis://n1:7000,n2:7001   a Redis Cluster: any node's URL,
                                                    or a comma list of nodes to start from
    REDIS_URL=redis+sentinel://[user:pass@]s1:26379,s2:26379/0/mymaster
                                                    Sentinel: the sentinels, the database and
                                                    the service name (python-socketio's form)

Every service types its client as `redis.asyncio.Redis`; a `RedisCluster` offers the same
commands, scripts and pipelines (a pipeline is split by slot; a transaction or a script must
stay within one slot, see services/keys.py), so the cluster client is handed out under that
type here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
POOL_WAIT = 5.0  # seconds a command waits for a free connection when the pool is full


@dataclass(frozen=True, slots=True)
class Location:
    """Where Redis is, parsed from the DSN: the kind, the hosts, and credentials."""

    kind: str  # "single" | "cluster" | "sentinel"
    hosts: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    db: int = 0
    service: str = "mymaster"

    def describe(self) -> str:
        hosts = ",".join(f"{h}:{p}" for h, p in self.hosts)
        if self.kind == "cluster":
            return f"cluster {hosts}"
        if self.kind == "sentinel":
            return f"sentinel {hosts} service {self.service}/{self.db}"
        return f"{hosts}/{self.db}"


def parse_location(dsn: str, *, cluster: bool = False) -> Location:
    """Parse REDIS_URL (or the DSN built from REDIS_HOST/...); a comma list names several
    hosts (cluster nodes or sentinels; later items may be bare `host:port`)."""
    head, *rest = [part.strip() for part in dsn.split(",") if part.strip()]
    first = urlsplit(head)
    scheme = first.scheme
    sentinel = scheme in SENTINEL_SCHEMES
    if cluster and sentinel:
        raise ValueError("REDIS_CLUSTER=true cannot use a redis+sentinel:// URL")
    # the rest of a comma list may hold the path (…,s2:26379/0/mymaster): take it from the last
    tail = urlsplit(rest[-1] if "://" in rest[-1] else f"{scheme}://{rest[-1]}") if rest else first
    hosts = [(first.hostname or "localhost", first.port or (26379 if sentinel else 6379))]
    for part in rest:
        parsed = urlsplit(part if "://" in part else f"{scheme}://{part}")
        hosts.append((parsed.hostname or "localhost", parsed.port or 6379))
    path = [p for p in (tail.path or first.path).split("/") if p]
    db, service = 0, "mymaster"
    if sentinel:
        db = int(path[0]) if path else 0
        service = path[1] if len(path) > 1 else service
    elif path:
        db = int(path[0])
    if len(hosts) > 1 and not (cluster or sentinel):
        raise ValueError("a comma list in REDIS_URL needs REDIS_CLUSTER=true or redis+sentinel://")
    return Location(
        kind="cluster" if cluster else "sentinel" if sentinel else "single",
        hosts=tuple(hosts),
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password is not None else None,
        tls=scheme.startswith("rediss"),
        db=db,
        service=service,
    )


def open_redis(
    dsn: str, *, cluster: bool = False, max_connections: int = 200, **options: Any
) -> Redis:
    """A client for the DSN (no I/O yet); `options` are redis-py connection options;
    `max_connections` bounds each pool (per node on a cluster)."""
    where = parse_location(dsn, cluster=cluster)
    if where.kind == "single":
        # a full pool waits (up to POOL_WAIT s) for a connection instead of failing at once:
        # redis-py's default pool refuses the 101st concurrent command with an error
        pool = BlockingConnectionPool.from_url(
            dsn, max_connections=max_connections, timeout=POOL_WAIT, **options
        )
        return Redis.from_pool(pool)
    options.update(username=where.username, password=where.password, ssl=where.tls)
    if where.kind == "cluster":
        options.pop("health_check_interval", None)  # per-node connections check themselves
        options.pop("retry_on_timeout", None)  # the cluster client retries on its own
        nodes = [ClusterNode(host, port) for host, port in where.hosts]
        client: Any = RedisCluster(startup_nodes=nodes, max_connections=max_connections, **options)
        return cast(Redis, client)  # the same command API (see the module docstring)
    socket_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel: Any = Sentinel(  # type: ignore[no-untyped-call]
        list(where.hosts), sentinel_kwargs=socket_options, db=where.db, **options
    )
    return cast(Redis, sentinel.master_for(where.service))


def is_cluster(redis: Redis) -> bool:
    """True for a Redis Cluster client (scripts must then stay within one hash slot)."""
    return isinstance(redis, RedisCluster)
