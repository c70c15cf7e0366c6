"""The analytics' events off the request path (services/batching.py): once started,
publish returns before anything is written; the events are written in batches in the order
accepted, with their own times; nothing accepted is lost when the app closes; a report
reads its own instance's events; a malformed event is dropped alone."""

from __future__ import annotations

from services.analytics import Analytics
from tests.analytics.conftest import Clock, local
from tests.conftest import delete_prefix, make_settings, redis_client, unique_prefix


async def test_closing_writes_every_accepted_event_in_order_with_its_own_time() -> None:
    prefix = unique_prefix("queue")
    settings = make_settings(redis_key_prefix=prefix, analytics_timezone="Europe/Berlin")
    clock = Clock(local(2027, 4, 1, 9).timestamp())
    redis = redis_client()
    analytics = Analytics(redis, settings, clock)
    analytics.start()
    try:
        for n in range(60):
            sid = f"s{n}"
            text = "thanks a lot" if n % 2 else "where is my order"
            await analytics.publish("message.customer", {"sessionId": sid, "userId": sid})
            await analytics.publish("message.bot", {"sessionId": sid, "attempts": []})
            clock.advance(60)  # the thanks come a minute later
            await analytics.publish(
                "message.customer", {"sessionId": sid, "userId": sid, "text": text}
            )
            await analytics.publish("webhook.delivery", {"result": "delivered"})
        await analytics.publish("message.bot", {"attempts": []})  # no session: dropped alone
        assert len(analytics.queue) > 0  # accepted, not yet written
        clock.advance(86_400 * 3)  # written later: each event keeps the time it happened
        await analytics.aclose()  # the app's shutdown writes what is left
        reader = Analytics(redis, settings, clock)
        summary = await reader.summary(local(2027, 4, 1).date(), local(2027, 4, 1).date())
        assert summary["episodes"]["count"] == 60
        assert summary["messages"] == {"customer": 120, "bot": 60, "agent": 0, "total": 180}
        assert summary["outcomes"]["botResolvedConfirmed"] == 30  # thanks after the answer
        assert summary["outcomes"]["pending"] == 30
        assert summary["webhooks"]["delivered"] == 60
        hourly = await reader.timeseries(
            "episodes", "hour", local(2027, 4, 1).date(), local(2027, 4, 1).date()
        )
        assert [p["value"] for p in hourly["points"]][9:11] == [60, 0]
        # closed: an event published now is written at once
        await analytics.publish("webhook.delivery", {"result": "failed"})
        assert len(analytics.queue) == 0
        summary = await reader.summary(local(2027, 4, 1).date(), local(2027, 4, 4).date())
        assert summary["webhooks"] == {"delivered": 60, "failed": 1}
    finally:
        await analytics.aclose()
        await delete_prefix(redis, prefix)
        await redis.aclose()


async def test_a_report_reads_its_own_instance_events() -> None:
    prefix = unique_prefix("queue")
    settings = make_settings(redis_key_prefix=prefix)
    clock = Clock(local(2027, 4, 2, 9).timestamp())
    redis = redis_client()
    analytics = Analytics(redis, settings, clock)
    analytics.start()
    try:
        for n in range(25):
            await analytics.publish("message.customer", {"sessionId": f"r{n}", "userId": "u"})
        summary = await analytics.summary()
        assert summary["episodes"]["count"] == 25 and summary["messages"]["customer"] == 25
    finally:
        await analytics.aclose()
        await delete_prefix(redis, prefix)
        await redis.aclose()
