"""Failover through the chain with the official SDKs against fake servers: the fault
matrix, streaming resets, breakers, and the brief's three provider setups."""

import asyncio
import logging

import pytest

from services.responders.base import Delta, Reply, Reset
from services.responders.chain import AllRespondersFailed
from services.responders.factory import build_responders
from tests.responders.conftest import PROMPT, closed_port_url


async def answer(chain, prompt=PROMPT):
    events = [event async for event in chain.stream(prompt)]
    return events, events[-1]


@pytest.mark.parametrize(("name", "behaviour", "attempts"), [
    ("500", {"mode": "status", "status": 500}, 2),
    ("503", {"mode": "status", "status": 503}, 2),
    ("429 with Retry-After", {"mode": "status", "status": 429, "retry_after": "0.1"}, 2),
    ("401", {"mode": "status", "status": 401}, 1),
    ("timeout", {"mode": "hang"}, 1),
    ("malformed JSON", {"mode": "malformed"}, 1),
    ("body that is not JSON", {"mode": "not_json"}, 1),
    ("slow first token", {"first_token_delay": 3.0}, 1),
])
async def test_a_failing_primary_hands_over_to_gemini(llm_settings, openai_fake, gemini_fake, local, name, behaviour, attempts):
    openai_fake.fake.set(**behaviour)
    gemini_fake.fake.set(answer="Gemini here: 3-5 business days.")
    chain = build_responders(llm_settings(), local)
    events, reply = await answer(chain)
    assert isinstance(reply, Reply) and reply.provider == "gemini", name
    assert not any(isinstance(e, Reset) for e in events)  # nothing had streamed yet: unseen
    status = chain.status()
    assert status["openai"]["attempts"] == attempts and status["openai"]["failures"] == attempts
    assert status["openai"]["lastError"] and status["gemini"]["successes"] == 1
    if name == "401":
        assert status["openai"]["state"] == "misconfigured"
    await chain.aclose()


async def test_connection_refused_hands_over(llm_settings, gemini_fake, local):
    chain = build_responders(llm_settings(openai_base_url=closed_port_url()), local)
    _, reply = await answer(chain)
    assert reply.provider == "gemini"
    assert chain.status()["openai"]["lastError"].startswith("connection error")
    await chain.aclose()


async def test_a_stream_cut_midway_is_reset_and_replaced_by_the_fallback(llm_settings, openai_fake, gemini_fake, local):
    openai_fake.fake.set(mode="cut", cut_after=4, chunk_size=6, answer="OpenAI was saying something long")
    gemini_fake.fake.set(answer="Gemini's whole answer.")
    chain = build_responders(llm_settings(provider_max_retries=0), local)
    events, reply = await answer(chain)
    kinds = [type(e).__name__ for e in events]
    reset_at = kinds.index("Reset")
    assert "Delta" in kinds[:reset_at]  # the customer saw the start of OpenAI's answer
    after = "".join(e.text for e in events[reset_at:] if isinstance(e, Delta))
    assert after == "Gemini's whole answer." and reply.provider == "gemini"
    await chain.aclose()


async def test_retry_after_is_honoured_and_the_retry_succeeds(llm_settings, openai_fake, local, caplog):
    caplog.set_level(logging.INFO, "services.responders.chain")
    openai_fake.fake.set(mode="status", status=429, retry_after="0.3", fail_times=1)
    chain = build_responders(llm_settings(), local)
    _, reply = await answer(chain)
    assert reply.provider == "openai"
    waits = [r.wait_s for r in caplog.records if r.getMessage() == "retrying responder"]
    assert waits == [0.3]  # it waited as told before retrying
    assert chain.status()["openai"]["retries"] == 1
    await chain.aclose()


async def test_a_long_retry_after_moves_on_instead_of_keeping_the_customer_waiting(llm_settings, openai_fake, gemini_fake, local):
    openai_fake.fake.set(mode="status", status=429, retry_after="120")
    chain = build_responders(llm_settings(), local)
    _, reply = await answer(chain)
    assert reply.provider == "gemini" and chain.status()["openai"]["attempts"] == 1
    await chain.aclose()


async def test_both_llms_down_the_embedded_responder_answers(llm_settings, openai_fake, gemini_fake, local):
    openai_fake.fake.set(mode="status", status=503)
    gemini_fake.fake.set(mode="status", status=500)
    chain = build_responders(llm_settings(), local)
    _, reply = await answer(chain)
    assert reply.provider == "local" and "3-5 business days" in reply.text
    await chain.aclose()


async def test_all_down_raises_all_responders_failed_with_every_reason(llm_settings, openai_fake, gemini_fake, local):
    openai_fake.fake.set(mode="status", status=503)
    gemini_fake.fake.set(mode="status", status=401)
    chain = build_responders(llm_settings(ai_provider_order="openai,gemini"), local)
    with pytest.raises(AllRespondersFailed) as err:
        await answer(chain)
    assert "openai: server error (503)" in err.value.detail and "gemini: not authorised (401)" in err.value.detail
    await chain.aclose()


async def test_the_overall_deadline_bounds_a_hanging_primary(llm_settings, openai_fake, gemini_fake, local):
    openai_fake.fake.set(mode="hang")
    gemini_fake.fake.set(mode="hang")
    chain = build_responders(llm_settings(provider_timeout=5, provider_first_token_timeout=5,
                                          message_deadline=0.6, provider_max_retries=3), local)
    _, reply = await answer(chain)
    assert reply.provider == "local"  # the in-process responder still gets its turn
    status = chain.status()
    assert status["openai"]["attempts"] == 1 and status["openai"]["lastError"] == "timeout"
    assert status["gemini"]["attempts"] == 0 and status["gemini"]["skipped"] == 1
    await chain.aclose()


async def test_the_breaker_opens_after_repeated_failures_and_recovers_after_cool_down(llm_settings, openai_fake, gemini_fake, local):
    openai_fake.fake.set(mode="status", status=500)
    chain = build_responders(llm_settings(breaker_failure_threshold=2, breaker_cooldown=0.5, provider_max_retries=1), local)
    _, reply = await answer(chain)
    assert reply.provider == "gemini" and chain.status()["openai"]["state"] == "open"
    seen = len(openai_fake.fake.requests)
    _, reply = await answer(chain)
    assert reply.provider == "gemini" and len(openai_fake.fake.requests) == seen  # skipped, no traffic
    assert chain.status()["openai"]["skipped"] == 1
    openai_fake.fake.set(answer="OpenAI is back.")
    await asyncio.sleep(0.6)
    _, reply = await answer(chain)
    assert reply.provider == "openai" and chain.status()["openai"]["state"] == "closed"
    await chain.aclose()


async def test_a_failed_half_open_probe_opens_the_breaker_again(llm_settings, openai_fake, gemini_fake, local):
    openai_fake.fake.set(mode="status", status=500)
    chain = build_responders(llm_settings(breaker_failure_threshold=1, breaker_cooldown=0.3, provider_max_retries=0), local)
    await answer(chain)
    await asyncio.sleep(0.35)
    await answer(chain)  # the probe fails
    assert chain.status()["openai"]["state"] == "open"
    await chain.aclose()


@pytest.mark.parametrize(("keys", "expected"), [
    ({"gemini_api_key": None, "gemini_base_url": None}, ["openai", "local"]),
    ({"openai_api_key": None, "openai_base_url": None}, ["gemini", "local"]),
    ({}, ["openai", "gemini", "local"]),
    ({"openai_api_key": None, "openai_base_url": None, "gemini_api_key": None}, ["local"]),
])
async def test_the_briefs_provider_setups(llm_settings, gemini_fake, openai_fake, local, keys, expected):
    chain = build_responders(llm_settings(**keys), local)
    assert chain.names == expected
    _, reply = await answer(chain)
    assert reply.provider == expected[0]
    await chain.aclose()


async def test_token_usage_is_summed_per_provider(llm_settings, openai_fake, local):
    chain = build_responders(llm_settings(), local)
    for _ in range(3):
        await answer(chain)
    assert chain.status()["openai"]["tokens"] == {"prompt": 126, "completion": 51}
    await chain.aclose()
