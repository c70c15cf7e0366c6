"""Per-provider figures from a real chain: OpenAI (the fake server) answers, then fails and
the built-in responder takes over; the summary counts replies, failed attempts, the
failover, tokens and the estimated cost of the configured model."""

from __future__ import annotations

from typing import Any

from tests.conftest import HEALTH_DETAIL, new_session


async def test_replies_failures_failover_tokens_and_cost(server_factory: Any, openai_fake: Any):
    srv = await server_factory(
        openai_api_key="sk-test",
        openai_base_url=openai_fake.openai_url,
        ai_provider_order="openai,local",
        provider_max_retries=0,
        analytics_prices="gpt-4.1-mini=1000/2000",  # per million tokens: visible amounts
    )
    async with srv.client() as api:
        sid = await new_session(api)
        msg = {"sessionId": sid, "message": "How long does shipping take?"}
        assert (await api.post("/api/v1/chat/message", json=msg)).json()["provider"] == "openai"
        openai_fake.fake.set(mode="status", status=500)
        assert (await api.post("/api/v1/chat/message", json=msg)).json()["provider"] == "local"
        summary = (await api.get("/api/v1/analytics/summary", headers=HEALTH_DETAIL)).json()
    local, openai = summary["providers"]
    assert (openai["replies"], openai["failures"], openai["failovers"]) == (1, 1, 1)
    assert openai["tokens"] == {"prompt": 42, "completion": 17, "total": 59}  # the fake's
    assert openai["estimatedCost"]["amount"] == round((42 * 1000 + 17 * 2000) / 1e6, 6)
    assert openai["latency"]["count"] == 2  # the answer and the failed attempt
    assert (local["replies"], local["failures"], local["estimatedCost"]["amount"]) == (1, 0, 0)
