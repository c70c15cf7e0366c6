"""GET /metrics: the Prometheus text parses, its counters move by what known actions do,
it needs the admin's credentials on the main port and none on METRICS_PORT."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import socketio
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from tests.agents.conftest import ADMIN, bearer, login
from tests.conftest import (
    HEALTH_DETAIL,
    RunningServer,
    delete_prefix,
    make_settings,
    new_session,
    redis_url,
    start_server,
)
from tests.fakes.llm import RunningFake, free_port
from tests.notify.conftest import SECRET
from tests.responders.conftest import _openai_server, openai_fake  # noqa: F401 - fixtures

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
async def server(_openai_server: RunningFake) -> AsyncIterator[RunningServer]:  # noqa: F811
    """OpenAI (the fake) then the local responder; a webhook endpoint that refuses
    connections; a small socket-event limit; /metrics also on a port of its own."""
    srv = await start_server(
        make_settings(
            admin_email=ADMIN["email"],
            admin_password=ADMIN["password"],
            openai_api_key="sk-test",
            openai_base_url=_openai_server.openai_url,
            ai_provider_order="openai,local",
            provider_max_retries=0,
            webhook_urls=f"http://127.0.0.1:{free_port()}/hook",
            webhook_secret=SECRET,
            webhook_retry_schedule="1h",
            webhook_poll_interval=0.1,
            rate_limit_socket_events="3/minute",
            metrics_port=free_port(),
        )
    )
    yield srv
    await srv.stop()
    client = Redis.from_url(redis_url())
    await delete_prefix(client, srv.settings.redis_key_prefix)
    await client.aclose()


@pytest.fixture
async def api(server: RunningServer, _openai_server: RunningFake) -> AsyncIterator[Any]:  # noqa: F811
    _openai_server.fake.reset()
    async with server.client() as client:
        yield client
    _openai_server.fake.reset()


async def scrape(api: httpx.AsyncClient) -> Samples:
    res = await api.get("/metrics", headers=HEALTH_DETAIL)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/plain")
    return parse(res.text)


async def eventually(check: Callable[[], Any], timeout: float = 10) -> None:
    """Wait until `check()` (a value or an awaitable) is true."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.05)


async def test_main_port_needs_the_admin_key_or_an_admins_token(api):
    assert (await api.get("/metrics")).status_code == 401
    assert (await api.get("/metrics", headers={"X-API-Key": "wrong"})).status_code == 401
    admin = await login(api, ADMIN["email"], ADMIN["password"])
    res = await api.post(
        "/api/v1/agents",
        json={"email": "ann@example.com", "name": "Ann", "password": "agent-pass-1"},
        headers=bearer(admin),
    )
    assert res.status_code == 201, res.text
    agent = await login(api, "ann@example.com", "agent-pass-1")
    refused = await api.get("/metrics", headers=bearer(agent))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await api.get("/metrics", headers=bearer(admin))).status_code == 200
    assert parse((await api.get("/metrics", headers=HEALTH_DETAIL)).text)


async def test_metrics_port_serves_the_same_text_without_credentials(server, api):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.settings.metrics_port}") as c:
        res = await c.get("/metrics")
        assert res.status_code == 200
        assert res.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        samples = parse(res.text)
        assert ("supportbot_messages_total", frozenset({("sender", "customer")})) in samples
        assert ("process_start_time_seconds", frozenset()) in samples
        assert (await c.get("/health")).status_code == 404
        assert (await c.post("/metrics")).status_code == 404


async def test_a_conversation_moves_the_counters_by_what_happened(api):
    before = await scrape(api)
    sid = await new_session(api)
    answered = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "hi"})
    assert answered.json()["provider"] == "openai"
    escalated = await api.post(
        "/api/v1/chat/message", json={"sessionId": sid, "message": "this is an emergency"}
    )
    assert escalated.json()["needsEscalation"] is True
    assert (await api.get(f"/api/v1/chat/history/{sid}")).status_code == 200
    assert (await api.get("/api/v1/no/such/thing")).status_code == 404
    after = await scrape(api)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("supportbot_sessions_created_total") == 1
    assert moved("supportbot_messages_total", sender="customer") == 2
    assert moved("supportbot_escalations_total", reason="keyword") == 1
    assert moved("supportbot_conversation_transitions_total", event="escalated") == 1
    replies = sum(moved("supportbot_replies_total", provider=p) for p in ("openai", "local"))
    assert replies == 2
    assert moved("supportbot_provider_attempts_total", provider="openai") == 2
    assert moved("supportbot_provider_tokens_total", provider="openai", kind="prompt") == 2 * 42
    assert moved("supportbot_provider_tokens_total", provider="openai", kind="completion") == 34
    latency = "supportbot_provider_latency_seconds_count"
    assert moved(latency, provider="openai", outcome="success") == 2
    assert value(after, "supportbot_queue_conversations", status="escalated") >= 1
    assert ("supportbot_agents_online", frozenset()) in after
    assert value(after, "supportbot_breaker_state", provider="openai", state="closed") == 1
    assert value(after, "supportbot_breaker_state", provider="openai", state="open") == 0
    route = {"method": "POST", "route": "/api/v1/chat/message", "status": "200"}
    assert moved("supportbot_http_requests_total", **route) == 2
    history = {"method": "GET", "route": "/api/v1/chat/history/{sessionId}", "status": "200"}
    assert moved("supportbot_http_requests_total", **history) == 1
    assert moved("supportbot_http_requests_total", method="GET", route="other", status="404") == 1
    assert not any(sid in str(labels) for _, labels in after)  # ids never become labels
    timed = "supportbot_http_request_duration_seconds_count"
    assert moved(timed, method="POST", route="/api/v1/chat/message") == 2
    assert moved("supportbot_redis_command_duration_seconds_count") > 5


async def test_a_failing_provider_counts_a_failure_and_a_failover(api, openai_fake):  # noqa: F811
    before = await scrape(api)
    openai_fake.fake.set(mode="status", status=503)
    sid = await new_session(api)
    res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "shipping"})
    assert res.json()["provider"] == "local"
    after = await scrape(api)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("supportbot_provider_failures_total", provider="openai") == 1
    assert moved("supportbot_failovers_total", from_provider="openai", to_provider="local") == 1
    failed = "supportbot_provider_latency_seconds_count"
    assert moved(failed, provider="openai", outcome="failure") == 1
    assert moved("supportbot_replies_total", provider="local") == 1


async def test_sockets_rate_limits_and_webhook_deliveries_are_counted(server, api):
    before = await scrape(api)
    client = socketio.AsyncClient()
    refusals: list[dict[str, Any]] = []
    client.on("error", refusals.append)
    await client.connect(server.url, transports=["websocket"])
    during = await scrape(api)
    assert value(during, "supportbot_socket_connections_open", namespace="/") == (
        value(before, "supportbot_socket_connections_open", namespace="/") + 1
    )
    for _ in range(4):  # the limit is 3 events a minute per socket
        await client.emit("no-such-event", {})
    await eventually(lambda: len(refusals) == 4)
    assert [r["code"] for r in refusals] == ["UNKNOWN_EVENT"] * 3 + ["RATE_LIMITED"]
    await client.disconnect()
    # an escalation is a conversation.escalated event: its webhook cannot connect, so the
    # attempt is counted as retrying (the retry is an hour away)
    sid = await new_session(api)
    await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "this is urgent"})

    async def delivered() -> bool:
        now = await scrape(api)
        return value(now, "supportbot_webhook_deliveries_total", result="retrying") > value(
            before, "supportbot_webhook_deliveries_total", result="retrying"
        )

    await eventually(delivered)
    after = await scrape(api)
    assert value(after, "supportbot_rate_limited_total", limit="socket_events") == (
        value(before, "supportbot_rate_limited_total", limit="socket_events") + 1
    )
    connects = "supportbot_socket_connections_total"
    assert value(after, connects, namespace="/") == value(before, connects, namespace="/") + 1
    assert value(after, "supportbot_socket_connections_open", namespace="/") == value(
        before, "supportbot_socket_connections_open", namespace="/"
    )
