"""Shared fixtures: a real Redis of the test session's own (a throwaway `redis-server` on a
free port, key prefixes per test), a real uvicorn server on a free port, and settings built
explicitly (never from a developer's .env).

`redis_url()` names that Redis; the server starts on first use and stops when the session
ends. TEST_REDIS_URL, when set, names a Redis to use instead (its keys are still prefixed
and deleted, but prefer the default: it never touches a Redis you run).

TEST_REDIS=cluster runs the same tests against a 3-master Redis Cluster the session starts
(tests/redis_cluster.py): settings get REDIS_CLUSTER=true and the node list, and
`redis_client()` is a cluster client. `make test` runs the Redis-heavy files that way too."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis

from services.config import Settings
from services.redis_client import open_redis
from tests.redis_cluster import RedisCluster, start_cluster
from tests.redis_server import RedisServer, free_port, start_redis_server
from tests.spec_once import install as validate_each_spec_once

__all__ = ["free_port"]  # re-exported: tests import it from here

validate_each_spec_once()

TEST_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()
START_TIMEOUT = 60.0  # seconds for a test server to train its knowledge and listen (busy CI)
_session_redis: RedisServer | None = None
_session_cluster: RedisCluster | None = None


def on_cluster() -> bool:
    """True when this session runs its Redis tests against a Redis Cluster."""
    return os.environ.get("TEST_REDIS", "").lower() == "cluster"


def redis_url() -> str:
    """The test session's Redis (started on first use, stopped at the end of the session);
    with TEST_REDIS=cluster, the cluster's node list (for REDIS_CLUSTER=true)."""
    global _session_redis, _session_cluster
    if explicit := os.environ.get("TEST_REDIS_URL"):
        return explicit
    if on_cluster():
        if _session_cluster is None:
            _session_cluster = start_cluster()
        return _session_cluster.urls
    if _session_redis is None:
        _session_redis = start_redis_server()
    return _session_redis.url


def redis_client() -> Redis:
    """A client of the test session's Redis (a cluster client with TEST_REDIS=cluster)."""
    return open_redis(redis_url(), cluster=on_cluster())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """schemathesis names each API operation's test after it (`test_x[POST /chat/message]`)
    but sets the matching node id on `_nodeid`, which pytest 9 no longer reads: all 52 kept
    the function's own id, and pytest-xdist, which tells tests apart by id, ran one. Each
    gets the id its name gives."""
    for item in items:
        if getattr(item, "operation_label", None) and item.parent is not None:
            item._id = item.parent.id.child(item.name)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _session_redis, _session_cluster
    if _session_redis is not None:
        _session_redis.stop()
        _session_redis = None
    if _session_cluster is not None:
        _session_cluster.stop()
        _session_cluster = None


def unique_prefix(tag: str = "t") -> str:
    return f"test:{tag}:{uuid.uuid4().hex[:12]}:"


TEST_ADMIN_KEY = "test-admin-key"
HEALTH_DETAIL = {"X-API-Key": TEST_ADMIN_KEY}  # /health with its operational detail


# Every test talks from 127.0.0.1 and the contract test sends hundreds of requests: the
# production defaults would refuse them. tests/guard/ sets small limits of its own.
GENEROUS_LIMITS = {
    "rate_limit_sessions": "100000/hour",
    "rate_limit_messages": "100000/minute",
    "rate_limit_requests": "100000/minute",
    "rate_limit_socket_events": "100000/minute",
    "rate_limit_sockets": 10000,
    "rate_limit_agents": "100000/minute",
}


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_env": "test",
        "admin_api_key": TEST_ADMIN_KEY,
        # the session's Redis only when the caller names none: a process outside pytest (a
        # subprocess a test runs) would otherwise start one and never stop it
        "redis_url": overrides["redis_url"] if "redis_url" in overrides else redis_url(),
        "redis_cluster": on_cluster(),
        "redis_key_prefix": unique_prefix(),
        "session_encryption_key": TEST_KEY,
        "log_level": "INFO",
        "handoff_summary_model": False,  # no extra model request at handoffs (tests/assist: on)
        "shutdown_grace": 2,  # as the servers' timeout_graceful_shutdown below
        **GENEROUS_LIMITS,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def delete_prefix(redis: Redis, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = redis_client()
    yield client
    await client.aclose()


@dataclass
class RunningServer:
    url: str
    port: int
    settings: Settings
    server: uvicorn.Server
    task: asyncio.Task[None]
    app: Any = None

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, **kwargs)

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)
        await close_socketio_redis(self.app)


async def close_socketio_redis(app: Any) -> None:
    """Close the Socket.IO Redis manager's listener task and connections, which the app's
    shutdown leaves open (they were the fixture's ResourceWarnings). Idempotent, so it stays
    harmless once the app's lifespan closes the manager itself."""
    while app is not None and not hasattr(app, "engineio_server"):
        app = getattr(app, "app", None)
    manager = getattr(getattr(app, "engineio_server", None), "manager", None)
    thread = getattr(manager, "thread", None)
    if thread is not None and not thread.done():
        thread.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await thread
    for name in ("pubsub", "redis"):
        client = getattr(manager, name, None)
        if client is not None:
            await client.aclose()


async def start_server(settings: Settings, clock: Any = None) -> RunningServer:
    """`clock`: the analytics' time (seconds since the epoch), for tests that move it."""
    from app import create_app

    port = free_port()
    app = create_app(settings, clock)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
        proxy_headers=False,  # as app.server_options: only TRUSTED_PROXIES are believed
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"server did not start within {START_TIMEOUT} s")
        await asyncio.sleep(0.02)
    return RunningServer(f"http://127.0.0.1:{port}", port, settings, server, task, app)


@pytest.fixture
async def server_factory(redis: Redis) -> AsyncIterator[Any]:
    """Start servers with given settings; stop them and delete their keys afterwards."""
    running: list[RunningServer] = []

    async def factory(**overrides: Any) -> RunningServer:
        srv = await start_server(make_settings(**overrides))
        running.append(srv)
        return srv

    yield factory
    for srv in running:
        await srv.stop()
        await delete_prefix(redis, srv.settings.redis_key_prefix)


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    """One server per test module, with default settings."""
    srv = await start_server(make_settings())
    yield srv
    await srv.stop()
    client = redis_client()
    await delete_prefix(client, srv.settings.redis_key_prefix)
    await client.aclose()


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as client:
        yield client


async def new_session(client: httpx.AsyncClient, user_id: str = "user123") -> str:
    res = await client.post("/api/v1/chat/session", json={"userId": user_id, "metadata": {}})
    assert res.status_code == 200, res.text
    return res.json()["sessionId"]


def here() -> Path:
    return Path(__file__).resolve().parent
