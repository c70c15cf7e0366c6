"""Per-provider figures from a real chain: OpenAI (the fake server) answers, then fails and
the built-in responder takes over; the summary counts replies, failed attempts, the
failover, tokens and the estimated cost of the configured model. And webhook deliveries:
the escalation that follows reaches one receiver and fails for good at another."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import HEALTH_DETAIL, free_port, new_session
from tests.notify.conftest import SECRET, Receiver, fast_webhooks


async def test_providers_and_webhook_deliveries(server_factory: Any, openai_fake: Any):
    good = await Receiver(free_port()).start()
    bad = await Receiver(free_port(), mode="fail").start()
    try:
        srv = await server_factory(
            **fast_webhooks(webhook_urls=f"{good.url},{bad.url}", webhook_secret=SECRET),
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
            human = {"sessionId": sid, "message": "I want to talk to a human"}
            assert (await api.post("/api/v1/chat/message", json=human)).json()["needsEscalation"]
            for _ in range(200):  # the failing one is retried four times, 0.3 s apart
                res = await api.get("/api/v1/analytics/summary", headers=HEALTH_DETAIL)
                if res.json()["webhooks"] == {"delivered": 1, "failed": 1}:
                    break
                await asyncio.sleep(0.05)
            assert res.json()["webhooks"] == {"delivered": 1, "failed": 1}
    finally:
        await good.stop()
        await bad.stop()
    local, openai = summary["providers"]
    assert (openai["replies"], openai["failures"], openai["failovers"]) == (1, 1, 1)
    assert openai["tokens"] == {"prompt": 42, "completion": 17, "total": 59}  # the fake's
    assert openai["estimatedCost"]["amount"] == round((42 * 1000 + 17 * 2000) / 1e6, 6)
    assert openai["latency"]["count"] == 2  # the answer and the failed attempt
    assert (local["replies"], local["failures"], local["estimatedCost"]["amount"]) == (1, 0, 0)
