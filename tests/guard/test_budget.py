"""Cost caps: LLM_MAX_OUTPUT_TOKENS reaches both providers; past SESSION_TOKEN_BUDGET or
DAILY_TOKEN_BUDGET the chain stops calling the remote providers (counted at the fake
servers), the built-in responder answers or the conversation escalates, never a 500.

Real Redis; the fake servers report 42 prompt + 17 completion tokens per reply.
"""

import logging

import pytest

from services.guard.budget import DAY_TTL_S, TokenBudget
from services.keys import session_key
from services.metrics import Metrics
from services.responders.base import Prompt, Usage
from services.responders.chain import AllRespondersFailed
from services.responders.factory import build_responders
from tests.conftest import delete_prefix, new_session, unique_prefix
from tests.responders import conftest as responder_fixtures
from tests.responders.conftest import PROMPT

ADMIN = {"X-API-Key": "guard-admin-key"}  # /health with its counters

# the provider fixtures of tests/responders/, shared here
_gemini_server = responder_fixtures._gemini_server
_openai_server = responder_fixtures._openai_server
gemini_fake = responder_fixtures.gemini_fake
llm_settings = responder_fixtures.llm_settings
local = responder_fixtures.local
openai_fake = responder_fixtures.openai_fake


PER_REPLY = 42 + 17


async def test_max_output_tokens_is_sent_to_both_providers(
    llm_settings, openai_fake, gemini_fake, local
):
    for order in ("openai", "gemini"):
        chain = build_responders(
            llm_settings(ai_provider_order=order, llm_max_output_tokens=321), local
        )
        await chain.respond(PROMPT)
        await chain.aclose()
    assert openai_fake.fake.requests[-1]["body"]["max_tokens"] == 321
    assert gemini_fake.fake.requests[-1]["body"]["generationConfig"]["maxOutputTokens"] == 321


async def test_budget_counts_per_session_and_per_day(redis):
    prefix = unique_prefix("budget")
    days = iter(["2026-01-01", "2026-01-01", "2026-01-01", "2026-01-02", "2026-01-02"])
    budget = TokenBudget(redis, prefix, session_budget=100, daily_budget=1000, today=lambda: "x")
    try:
        await redis.hset(session_key(prefix, "s1"), "status", "active")
        await budget.charge("s1", Usage(40, 20))
        await budget.charge("gone", Usage(40, 20))  # no session hash is created for it
        assert await redis.exists(session_key(prefix, "gone")) == 0
        assert await budget.used("s1") == (60, 120)
        assert await budget.spent("s1") is None
        await budget.charge("s1", Usage(30, 10))
        assert await budget.spent("s1") == "session"
        assert await budget.spent("s2") is None  # another session still may
        assert 0 < await redis.ttl(budget.daily_key()) <= DAY_TTL_S

        daily = TokenBudget(
            redis, prefix, session_budget=0, daily_budget=100, today=lambda: next(days)
        )
        await daily.charge(None, Usage(100, 0))  # 2026-01-01
        assert await daily.spent("s9") == "daily"  # 2026-01-01
        assert await daily.spent(None) == "daily"  # 2026-01-01
        assert await daily.spent(None) is None  # a new UTC day
        off = TokenBudget(redis, prefix, session_budget=0, daily_budget=0)
        assert await off.spent("s1") is None
    finally:
        await delete_prefix(redis, prefix)


async def test_past_the_session_budget_the_remote_providers_are_skipped(
    redis, llm_settings, openai_fake, gemini_fake, local, caplog
):
    prefix = unique_prefix("budget")
    await redis.hset(session_key(prefix, "s1"), "status", "active")
    metrics = Metrics()
    chain = build_responders(
        llm_settings(
            redis_key_prefix=prefix,
            session_token_budget=2 * PER_REPLY,
            daily_token_budget=0,
        ),
        local,
        redis=redis,
        metrics=metrics,
    )
    prompt = Prompt(message="How long does shipping take?", session_id="s1")
    caplog.set_level(logging.INFO)
    try:
        providers = [(await chain.respond(prompt)).provider for _ in range(4)]
        other = await chain.respond(Prompt(message="Shipping time?", session_id="s2"))
    finally:
        await chain.aclose()
        await delete_prefix(redis, prefix)
    assert providers == ["openai", "openai", "local", "local"]
    assert other.provider == "openai"  # another session has its own budget
    assert len(openai_fake.fake.requests) == 3 and gemini_fake.fake.requests == []
    assert metrics.budget_skips == {"session": 2}
    assert chain.status()["openai"]["skipped"] == 2 and chain.status()["gemini"]["skipped"] == 2
    assert any(r.getMessage().startswith("token budget spent") for r in caplog.records)


async def test_the_daily_budget_is_shared_by_instances(
    redis, llm_settings, openai_fake, gemini_fake, local
):
    prefix = unique_prefix("budget")
    settings = llm_settings(
        redis_key_prefix=prefix,
        session_token_budget=0,
        daily_token_budget=PER_REPLY + 1,
        ai_provider_order="gemini,local",
    )
    first, second = (build_responders(settings, local, redis=redis) for _ in range(2))
    try:
        assert (await first.respond(PROMPT)).provider == "gemini"
        assert (await second.respond(PROMPT)).provider == "gemini"  # 59 < 60 before it
        assert (await first.respond(PROMPT)).provider == "local"
        assert (await second.respond(PROMPT)).provider == "local"
        assert len(gemini_fake.fake.requests) == 2
        assert second.metrics.budget_skips == {"daily": 1}
    finally:
        await first.aclose()
        await second.aclose()
        await delete_prefix(redis, prefix)


async def test_without_the_local_responder_a_spent_budget_is_a_chain_failure(
    redis, llm_settings, openai_fake, gemini_fake, local
):
    prefix = unique_prefix("budget")
    settings = llm_settings(
        redis_key_prefix=prefix, daily_token_budget=1, ai_provider_order="openai,gemini"
    )
    chain = build_responders(settings, local, redis=redis)
    try:
        await chain.respond(PROMPT)
        with pytest.raises(AllRespondersFailed) as failed:
            await chain.respond(PROMPT)
        assert failed.value.reasons == {
            "openai": "token budget spent (daily)",
            "gemini": "token budget spent (daily)",
        }
    finally:
        await chain.aclose()
        await delete_prefix(redis, prefix)
    assert len(openai_fake.fake.requests) == 1


async def test_rest_past_the_session_budget_answers_locally_then_escalates_never_a_500(
    server_factory, openai_fake
):
    srv = await server_factory(
        openai_api_key="sk-test",
        openai_base_url=openai_fake.openai_url,
        session_token_budget=PER_REPLY,
        admin_api_key=ADMIN["X-API-Key"],
    )
    async with srv.client() as api:
        sid = await new_session(api)
        replies = []
        for _ in range(2):
            res = await api.post(
                "/api/v1/chat/message",
                json={"sessionId": sid, "message": "How long does shipping take?"},
            )
            assert res.status_code == 200
            replies.append(res.json())
        assert [r["provider"] for r in replies] == ["openai", "local"]
        assert len(openai_fake.fake.requests) == 1
        counters = (await api.get("/api/v1/health", headers=ADMIN)).json()["counters"]
        assert counters["budgetSkips"] == {"session": 1}

    only_remote = await server_factory(
        openai_api_key="sk-test",
        openai_base_url=openai_fake.openai_url,
        ai_provider_order="openai",
        daily_token_budget=1,
    )
    async with only_remote.client() as api:
        sid = await new_session(api)
        first = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "hi"})
        res = await api.post(
            "/api/v1/chat/message", json={"sessionId": sid, "message": "And shipping?"}
        )
        assert first.status_code == res.status_code == 200
        body = res.json()
        assert body["provider"] == "none" and body["needsEscalation"] is True
        assert [r["rule"] for r in body["escalation"]["reasons"]] == ["technical_error"]
        assert len(openai_fake.fake.requests) == 2
