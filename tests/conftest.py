"""Shared fixtures: real Redis (database 9, a key prefix per test), a real uvicorn server
on a free port, and settings built explicitly (never from a developer's .env)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
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

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
TEST_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_prefix(tag: str = "t") -> str:
    return f"test:{tag}:{uuid.uuid4().hex[:12]}:"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_env": "test",
        "redis_url": REDIS_URL,
        "redis_key_prefix": unique_prefix(),
        "session_encryption_key": TEST_KEY,
        "log_level": "INFO",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def delete_prefix(redis: Redis, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@dataclass
class RunningServer:
    url: str
    port: int
    settings: Settings
    server: uvicorn.Server
    task: asyncio.Task

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, **kwargs)

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)


async def start_server(settings: Settings) -> RunningServer:
    from app import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    for _ in range(300):
        if server.started:
            break
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.02)
    else:
        raise RuntimeError("server did not start")
    return RunningServer(f"http://127.0.0.1:{port}", port, settings, server, task)


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
    client = Redis.from_url(REDIS_URL)
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
