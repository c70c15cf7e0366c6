"""Fixtures for agent assist: the desk (a server with a first admin), agent consoles, the
fake OpenAI server; and a helper that brings a conversation to an agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.agents.conftest import (  # noqa: F401 - fixtures
    ADMIN,
    AGENT_EVENTS,
    Desk,
    Recorder,
    bearer,
    consoles,
    desk,
    desk_settings,
    login,
)
from tests.conftest import (
    RunningServer,
    delete_prefix,
    make_settings,
    new_session,
    redis_url,
    start_server,
)
from tests.responders.conftest import (  # noqa: F401 - fixtures
    _gemini_server,
    _openai_server,
    gemini_fake,
    llm_settings,
    local,
    openai_fake,
)

ASSIST_EVENTS = (*AGENT_EVENTS, "suggestions")


async def say(api: httpx.AsyncClient, sid: str, message: str) -> dict[str, Any]:
    res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": message})
    assert res.status_code == 200, res.text
    return dict(res.json())


async def handed_over(api: httpx.AsyncClient, *messages: str) -> str:
    """A new session whose customer wrote `messages`, the last one asking for a person."""
    sid = await new_session(api)
    for message in messages:
        body = await say(api, sid, message)
    assert body["needsEscalation"] is True, body
    return sid


async def claimed(api: httpx.AsyncClient, token: str, *messages: str) -> str:
    sid = await handed_over(api, *messages)
    res = await api.post(f"/api/v1/agents/conversations/{sid}/claim", headers=bearer(token))
    assert res.status_code == 200, res.text
    return sid


async def conversation(api: httpx.AsyncClient, token: str, sid: str) -> dict[str, Any]:
    res = await api.get(f"/api/v1/agents/conversations/{sid}", headers=bearer(token))
    assert res.status_code == 200, res.text
    return dict(res.json())


def model_settings(fake: Any, **overrides: Any) -> dict[str, Any]:
    """A desk whose responder chain has the fake OpenAI server (and the local one after it);
    the model writes handoff summaries; one failure never opens the breaker."""
    return desk_settings(
        openai_api_key="sk-test",
        openai_base_url=fake.openai_url,
        handoff_summary_model=True,
        breaker_failure_threshold=1000,
        **overrides,
    )


async def _serve(**overrides: Any) -> AsyncIterator[RunningServer]:
    srv = await start_server(make_settings(**overrides))
    yield srv
    await srv.stop()
    client = Redis.from_url(redis_url())
    await delete_prefix(client, srv.settings.redis_key_prefix)
    await client.aclose()


@pytest.fixture(scope="module")
async def plain_server() -> AsyncIterator[RunningServer]:
    """One server per module with no model: extractive summaries, knowledge suggestions."""
    async for srv in _serve(**desk_settings()):
        yield srv


@pytest.fixture(scope="module")
async def model_server(_openai_server: Any) -> AsyncIterator[RunningServer]:  # noqa: F811
    """One server per module with the fake model; SUMMARY_TIMEOUT is 3 s."""
    async for srv in _serve(**model_settings(_openai_server, summary_timeout=3.0)):
        yield srv
