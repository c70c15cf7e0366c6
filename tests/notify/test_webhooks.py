"""Webhooks end to end: a real server, real Redis, and a real HTTP receiver on a free port
that checks signatures with the standardwebhooks library."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from tests.agents.conftest import ADMIN, bearer, desk_settings, login
from tests.conftest import new_session
from tests.notify.conftest import SECRET, Receiver, fast_webhooks, verify

URGENT = "This is urgent, my order is lost"
ADMIN_KEY = "notify-admin-key"


def hooked(receiver: Receiver, **overrides: Any) -> dict[str, Any]:
    return desk_settings(
        **fast_webhooks(
            webhook_urls=receiver.url,
            webhook_secret=SECRET,
            admin_api_key=ADMIN_KEY,
            **overrides,
        )
    )


async def escalate(api: httpx.AsyncClient, message: str = URGENT) -> tuple[str, float]:
    """A new session escalated by its first message; the session and the POST's seconds."""
    sid = await new_session(api)
    started = time.perf_counter()
    res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": message})
    took = time.perf_counter() - started
    assert res.status_code == 200, res.text
    assert res.json()["needsEscalation"] is True, res.text
    return sid, took


async def test_every_lifecycle_event_arrives_signed(server_factory: Any, receiver: Receiver):
    srv = await server_factory(**hooked(receiver))
    async with srv.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        sid, _ = await escalate(api)
        base = f"/api/v1/agents/conversations/{sid}"
        assert (await api.post(f"{base}/claim", headers=bearer(admin))).status_code == 200
        assert (await api.post(f"{base}/resolve", headers=bearer(admin))).status_code == 200
        res = await api.post(f"/api/v1/chat/session/{sid}/rating", json={"rating": 5})
        assert res.status_code == 200, res.text
        await receiver.wait_until(lambda: len(receiver.accepted()) >= 4)

    events = [verify(hit) for hit in receiver.accepted()]
    assert {e["type"] for e in events} == {
        "conversation.escalated",
        "conversation.assigned",
        "conversation.resolved",
        "conversation.rated",
    }
    for hit, event in zip(receiver.accepted(), events, strict=True):
        assert set(event) == {"type", "timestamp", "data"}
        assert event["data"]["sessionId"] == sid
        assert hit.id.startswith("evt_")
        assert hit.headers["webhook-signature"].startswith("v1,")
        assert hit.headers["content-type"] == "application/json"
    escalated = next(e for e in events if e["type"] == "conversation.escalated")
    assert escalated["data"]["conversation"]["reasons"][0]["rule"] == "keyword"
    assert len({hit.id for hit in receiver.accepted()}) == 4
    # a receiver with another secret, or a tampered body, refuses it
    hit = receiver.accepted()[0]
    with pytest.raises(WebhookVerificationError):
        verify(hit, "whsec_" + "A" * 32)
    tampered = type(hit)(hit.path, hit.headers, hit.body.replace(b"conversation", b"x"), 204)
    with pytest.raises(WebhookVerificationError):
        verify(tampered)


async def test_a_receiver_failing_three_times_gets_the_event_once_more(
    server_factory: Any, receiver: Receiver
):
    receiver.fail_first = 3
    srv = await server_factory(**hooked(receiver))
    async with srv.client(headers={"X-API-Key": ADMIN_KEY}) as api:
        await escalate(api)
        await receiver.wait_until(lambda: len(receiver.accepted()) == 1)
        await asyncio.sleep(1.5)  # longer than every remaining retry delay
        assert [h.status for h in receiver.hits] == [500, 500, 500, 204]
        assert len({h.id for h in receiver.hits}) == 1, "the same webhook-id on every attempt"
        assert len({h.body for h in receiver.hits}) == 1, "the same body on every attempt"
        for hit in receiver.hits:
            verify(hit)

        res = await api.get("/api/v1/webhooks/deliveries", params={"event": receiver.hits[0].id})
        assert res.status_code == 200, res.text
        [delivery] = res.json()["deliveries"]
        assert delivery["status"] == "succeeded"
        assert [a["status"] for a in delivery["attempts"]] == [500, 500, 500, 204]
        assert delivery["attempts"][0]["error"].startswith("HTTP 500")
        assert delivery["attempts"][-1]["error"] is None
        assert all(a["latencyMs"] >= 0 for a in delivery["attempts"])


async def test_a_restart_between_attempts_still_delivers(server_factory: Any, receiver: Receiver):
    receiver.fail_first = 1
    first = await server_factory(**hooked(receiver, webhook_retry_schedule="2s"))
    async with first.client() as api:
        await escalate(api)
    await receiver.wait_until(lambda: len(receiver.hits) == 1)
    await first.stop()  # the retry waits in Redis, due in about 2 s
    assert len(receiver.hits) == 1

    prefix = first.settings.redis_key_prefix
    await server_factory(**hooked(receiver, webhook_retry_schedule="2s", redis_key_prefix=prefix))
    await receiver.wait_until(lambda: len(receiver.accepted()) == 1, timeout=20)
    await asyncio.sleep(1.0)
    assert [h.status for h in receiver.hits] == [500, 204]
    assert receiver.hits[0].id == receiver.hits[1].id
    verify(receiver.hits[1])


async def test_two_instances_deliver_each_event_once(server_factory: Any, receiver: Receiver):
    a = await server_factory(**hooked(receiver))
    b = await server_factory(**hooked(receiver, redis_key_prefix=a.settings.redis_key_prefix))
    async with a.client() as api_a, b.client() as api_b:
        for i in range(10):
            await escalate(api_a if i % 2 else api_b)
    await receiver.wait_until(lambda: len(receiver.hits) >= 10)
    await asyncio.sleep(1.5)  # anything sent twice would arrive by now
    ids = [h.id for h in receiver.hits]
    assert len(ids) == 10 and len(set(ids)) == 10, ids


async def test_a_hanging_receiver_does_not_slow_replies(server_factory: Any, receiver: Receiver):
    """The same server and receiver: message latency while the receiver hangs every
    delivery, then with the receiver switched off (deliveries fail at once)."""
    srv = await server_factory(
        **hooked(receiver, webhook_timeout=30.0, webhook_claim_idle=120.0, webhook_concurrency=4)
    )
    rounds = 12
    async with srv.client() as api:
        await escalate(api)  # warm-up (first request, first delivery)
        receiver.mode = "hang"
        hanging = [(await escalate(api))[1] for _ in range(rounds)]
        await receiver.stop()
        off = [(await escalate(api))[1] for _ in range(rounds)]
    hang_ms, off_ms = statistics.median(hanging) * 1000, statistics.median(off) * 1000
    ratio = hang_ms / off_ms
    print(
        f"\nPOST /chat/message median: receiver hanging {hang_ms:.1f} ms, "
        f"receiver off {off_ms:.1f} ms, ratio {ratio:.2f}"
    )
    assert ratio < 3, (hanging, off)
