"""Two app instances sharing one Redis prefix and one controllable clock (the analytics'
time), an admin, and helpers to drive conversations through the public REST API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import (
    RunningServer,
    delete_prefix,
    make_settings,
    redis_client,
    start_server,
    unique_prefix,
)
from tests.responders.conftest import _openai_server, openai_fake  # noqa: F401 - fixtures

ADMIN = {"email": "lead@example.com", "password": "lead-pass-123"}
ZONE = "Europe/Berlin"


class Clock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def at(self, when: datetime) -> None:
        self.t = when.timestamp()

    def advance(self, seconds: float) -> None:
        self.t += seconds


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(ZONE))


@dataclass
class Instance:
    server: RunningServer
    api: httpx.AsyncClient


@dataclass
class Fleet:
    clock: Clock
    settings: dict[str, Any]
    instances: list[Instance] = field(default_factory=list)
    admin: str = ""

    def pick(self, i: int) -> Instance:
        return self.instances[i % len(self.instances)]

    async def add(self) -> Instance:
        server = await start_server(make_settings(**self.settings), self.clock)
        api = server.client()
        instance = Instance(server, api)
        self.instances.append(instance)
        return instance

    async def stop_all(self) -> None:
        for instance in self.instances:
            await instance.api.aclose()
            await instance.server.stop()
        self.instances.clear()

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin}"}

    async def get(self, path: str, i: int = 0, **params: Any) -> Any:
        res = await self.pick(i).api.get(
            f"/api/v1/analytics/{path}", params=params, headers=self.bearer()
        )
        assert res.status_code == 200, res.text
        return res.json()

    async def wait_for(
        self, read: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], timeout: float = 15
    ) -> Any:
        """Read until `ok` (the settling job runs every 50 ms of real time)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await read()
            if ok(value) or asyncio.get_running_loop().time() > deadline:
                return value
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def fleet() -> AsyncIterator[Fleet]:
    clock = Clock(local(2027, 1, 1).timestamp())
    prefix = unique_prefix("analytics")
    f = Fleet(
        clock,
        {
            "redis_key_prefix": prefix,
            "analytics_timezone": ZONE,
            "analytics_settle_interval": 0.05,
            "admin_email": ADMIN["email"],
            "admin_password": ADMIN["password"],
            "off_hours_bot": False,  # a waiting customer gets no bot answers: pure lifecycle
        },
    )
    await f.add()
    await f.add()
    res = await f.instances[0].api.post("/api/v1/agents/login", json=ADMIN)
    assert res.status_code == 200, res.text
    f.admin = res.json()["token"]
    yield f
    await f.stop_all()
    redis = redis_client()  # a cluster client with TEST_REDIS=cluster
    await delete_prefix(redis, prefix)
    await redis.aclose()
