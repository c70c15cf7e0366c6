"""The episode rules on their own (pure), and the settling job on a real Redis: two
instances settling the same due episodes at once count each outcome once."""

from __future__ import annotations

import asyncio

from services.analytics import Analytics
from services.analytics.episodes import Effects, Episode, Windows
from services.analytics.histogram import WAIT_BOUNDS, percentiles
from tests.analytics.conftest import Clock, local
from tests.conftest import delete_prefix, make_settings, redis_client, unique_prefix

W = Windows(assumed=86_400_000, abandoned=1_800_000, reopen=7 * 86_400_000)
H = 3_600_000


def outcome_counts(fx: Effects) -> dict[str, int]:
    total: dict[str, int] = {}
    for _, fields in fx.counts:
        for k, v in fields.items():
            if k.startswith("out:") or k == "episodes":
                total[k] = total.get(k, 0) + v
    return {k: v for k, v in total.items() if v}


def test_thanks_before_any_answer_confirms_nothing() -> None:
    ep, fx = Episode(), Effects()
    ep.customer_message(0, True, W, fx)
    assert ep.state == "bot" and outcome_counts(fx) == {"episodes": 1}


def test_a_good_rating_after_a_bot_answer_confirms_and_a_late_one_upgrades_assumed() -> None:
    ep, fx = Episode(), Effects()
    ep.customer_message(0, False, W, fx)
    ep.bot_answer(1, [], fx)
    ep.rated(2, 5, fx)
    assert ep.outcome == "bot_resolved_confirmed"
    ep2, fx2 = Episode(), Effects()
    ep2.customer_message(0, False, W, fx2)
    ep2.bot_answer(1, [], fx2)
    assert ep2.settle(1 + W.assumed, W, fx2)
    ep2.rated(2 + W.assumed, 4, fx2)
    assert outcome_counts(fx2) == {"episodes": 1, "out:bot_resolved_confirmed": 1}


def test_a_return_after_the_reopen_window_is_only_a_new_episode() -> None:
    ep, fx = Episode(), Effects()
    ep.customer_message(0, False, W, fx)
    ep.bot_answer(1, [], fx)
    ep.customer_message(1 + W.assumed + W.reopen + 1, False, W, fx)  # settles, then returns
    assert outcome_counts(fx) == {"episodes": 2, "out:bot_resolved_assumed": 1}
    assert ep.n == 2 and ep.state == "bot"


def test_an_abandoned_escalation_claimed_late_becomes_agent_resolved() -> None:
    ep, fx = Episode(), Effects()
    ep.customer_message(0, False, W, fx)
    ep.bot_answer(1, ["requested"], fx)
    assert ep.settle(2 * H, W, fx) and ep.outcome == "abandoned"
    ep.claimed(3 * H, fx)
    ep.resolved(3 * H + 60_000, fx)
    assert outcome_counts(fx) == {"episodes": 1, "out:agent_resolved": 1}


def test_a_customer_who_writes_while_waiting_has_not_abandoned() -> None:
    ep, fx = Episode(), Effects()
    ep.customer_message(0, False, W, fx)
    ep.bot_answer(1, ["keyword"], fx)
    assert ep.settle(H, W, fx)  # silent for half an hour: abandoned
    ep.customer_message(H + 1, False, W, fx, waiting=True)  # ... but still there
    assert ep.state == "escalated" and outcome_counts(fx) == {"episodes": 1}
    assert not ep.settle(H + W.abandoned, W, fx)
    assert ep.settle(H + 1 + W.abandoned, W, fx)
    assert outcome_counts(fx) == {"episodes": 1, "out:abandoned": 1}


def test_percentiles_are_bucket_bounds_and_none_above_the_last() -> None:
    fields: dict[str, int] = {"h:w:1": 9, f"h:w:{len(WAIT_BOUNDS)}": 1, "h:w:sum": 0}
    p = percentiles(fields, "w", WAIT_BOUNDS, "seconds")
    assert (p["count"], p["p50"], p["p90"], p["p99"]) == (10, 10.0, 10.0, None)


async def test_two_instances_settle_each_due_episode_once() -> None:
    prefix = unique_prefix("settle")
    settings = make_settings(redis_key_prefix=prefix, analytics_timezone="Europe/Berlin")
    clock = Clock(local(2027, 3, 1, 9).timestamp())
    redis = redis_client()
    a, b = Analytics(redis, settings, clock), Analytics(redis, settings, clock)
    try:
        for n in range(40):
            sid = f"s{n}"
            await a.publish("message.customer", {"sessionId": sid, "userId": sid, "text": "hi"})
            await b.publish("message.bot", {"sessionId": sid, "escalated": [], "attempts": []})
        clock.advance(86_401)
        looked = await asyncio.gather(*(x.settle_due() for x in (a, b, a, b)))
        assert sum(looked) >= 40
        summary = await b.summary()
        assert summary["outcomes"]["botResolvedAssumed"] == 40
        assert summary["outcomes"]["pending"] == 0 and summary["episodes"]["count"] == 40
        assert await a.settle_due() == 0  # nothing left to settle
    finally:
        await delete_prefix(redis, prefix)
        await redis.aclose()


async def test_providers_failovers_tokens_cost_webhooks() -> None:
    prefix = unique_prefix("providers")
    settings = make_settings(
        redis_key_prefix=prefix, analytics_prices="gpt-x=2/8,gem-y=1/4", analytics_currency="EUR"
    )
    clock = Clock(local(2027, 3, 2, 9).timestamp())
    redis = redis_client()
    analytics = Analytics(redis, settings, clock)
    failed = {"provider": "openai", "model": "gpt-x", "ok": False, "latencyMs": 30000}
    answered = {
        "provider": "gemini",
        "model": "gem-y",
        "ok": True,
        "latencyMs": 900,
        "promptTokens": 1000,
        "completionTokens": 500,
    }
    by_openai = {**answered, "provider": "openai", "model": "gpt-x", "latencyMs": 400}
    try:
        for attempts in ([failed, answered], [by_openai], [failed, failed]):
            await analytics.publish(
                "message.bot", {"sessionId": "p1", "escalated": [], "attempts": attempts}
            )
        for result in ("delivered", "delivered", "failed"):
            await analytics.publish("webhook.delivery", {"result": result})
        for suggestion in (None, {"origin": "knowledge", "edited": False}):
            await analytics.publish(
                "agent.replied", {"sessionId": "p1", "agentId": "a1", "suggestion": suggestion}
            )
        summary = await analytics.summary()
        gemini, openai = summary["providers"]  # by name
        assert (openai["replies"], openai["failures"], openai["failovers"]) == (1, 3, 1)
        assert openai["tokens"] == {"prompt": 1000, "completion": 500, "total": 1500}
        assert openai["estimatedCost"] == {"amount": 0.006, "currency": "EUR"}  # 2e-3 + 4e-3
        assert (openai["latency"]["count"], openai["latency"]["p50"]) == (4, 30000.0)
        assert gemini["estimatedCost"]["amount"] == 0.003 and gemini["replies"] == 1
        assert summary["webhooks"] == {"delivered": 2, "failed": 1}
        assert summary["suggestionsUsed"] == 1
        series = await analytics.timeseries("cost")
        assert series["points"][-1]["breakdown"] == {"gemini": 0.003, "openai": 0.006}
        csv = analytics.timeseries_csv(series).splitlines()
        assert csv[0] == "start,value,numerator,denominator,gemini,openai"
    finally:
        await delete_prefix(redis, prefix)
        await redis.aclose()
