"""Failover through the chain with the official SDKs against fake servers: the fault
matrix with either provider as primary, streaming resets, the deadline, breakers, the
brief's provider setups, and token counts."""

import asyncio
import logging

import pytest

from services.responders.base import Delta, Reply, Reset
from services.responders.chain import AllRespondersFailed
from services.responders.factory import build_responders
from tests.responders.conftest import PROMPT, closed_port_url

OTHER = {"openai": "gemini", "gemini": "openai"}


async def answer(chain, prompt=PROMPT):
    events = [event async for event in chain.stream(prompt)]
    return events, events[-1]


def fakes(primary, openai_fake, gemini_fake):
    return (openai_fake, gemini_fake) if primary == "openai" else (gemini_fake, openai_fake)


def order(primary, local=True):
    return f"{primary},{OTHER[primary]}" + (",local" if local else "")


# llm_settings: attempt timeout 1 s, first token 0.5 s, 1 retry, breaker after 2 failures
@pytest.mark.parametrize("primary", ["openai", "gemini"])
@pytest.mark.parametrize(
    ("fault", "behaviour", "attempts"),
    [
        ("500", {"mode": "status", "status": 500}, 2),
        ("503", {"mode": "status", "status": 503}, 2),
        ("429 with Retry-After", {"mode": "status", "status": 429, "retry_after": "0.1"}, 2),
        ("401", {"mode": "status", "status": 401}, 1),
        ("hang", {"mode": "hang"}, 1),
        ("malformed JSON", {"mode": "malformed"}, 1),
        ("JSON of the wrong shape", {"mode": "wrong_schema"}, 1),
        ("body that is not JSON", {"mode": "not_json"}, 1),
        ("slow first token", {"first_token_delay": 3.0}, 1),
        ("stream cut before any text", {"mode": "cut", "cut_after": 1, "chunk_size": 1}, 2),
    ],
)
async def test_a_failing_primary_hands_over_unseen(
    llm_settings, openai_fake, gemini_fake, local, primary, fault, behaviour, attempts
):
    first, second = fakes(primary, openai_fake, gemini_fake)
    first.fake.set(**behaviour)
    second.fake.set(answer="The fallback: 3-5 business days.")
    chain = build_responders(llm_settings(ai_provider_order=order(primary)), local)
    events, reply = await answer(chain)
    assert isinstance(reply, Reply) and reply.provider == OTHER[primary], fault
    assert not any(isinstance(e, Reset) for e in events)  # nothing had streamed yet: unseen
    assert (
        "".join(e.text for e in events if isinstance(e, Delta))
        == "The fallback: 3-5 business days."
    )
    status = chain.status()
    assert status[primary]["attempts"] == attempts and status[primary]["failures"] == attempts
    assert status[primary]["lastError"] and status[primary]["lastErrorAt"].endswith("Z")
    assert status[OTHER[primary]]["successes"] == 1
    assert status[primary]["state"] == {"401": "misconfigured"}.get(
        fault, "open" if attempts == 2 else "closed"
    )
    await chain.aclose()


@pytest.mark.parametrize("primary", ["openai", "gemini"])
async def test_connection_refused_hands_over(
    llm_settings, openai_fake, gemini_fake, local, primary
):
    refused = closed_port_url()
    urls = (
        {"openai_base_url": refused}
        if primary == "openai"
        else {"gemini_base_url": refused.removesuffix("/v1")}
    )
    chain = build_responders(llm_settings(ai_provider_order=order(primary), **urls), local)
    _, reply = await answer(chain)
    assert reply.provider == OTHER[primary]
    assert chain.status()[primary]["lastError"].startswith("connection error")
    await chain.aclose()


@pytest.mark.parametrize("primary", ["openai", "gemini"])
@pytest.mark.parametrize("fault", ["cut", "stall"])
async def test_a_stream_failing_midway_is_reset_and_replaced_by_the_fallback(
    llm_settings, openai_fake, gemini_fake, local, primary, fault
):
    first, second = fakes(primary, openai_fake, gemini_fake)
    first.fake.set(  # past the output check's hold-back (60 characters), so it shows
        mode=fault,
        cut_after=20,
        chunk_size=6,
        answer="The primary was saying something long " + "and longer " * 12,
    )
    second.fake.set(answer="The fallback's whole answer.")
    chain = build_responders(
        llm_settings(ai_provider_order=order(primary), provider_max_retries=0), local
    )
    events, reply = await answer(chain)
    kinds = [type(e).__name__ for e in events]
    reset_at = kinds.index("Reset")
    assert "Delta" in kinds[:reset_at]  # the customer saw the start of the primary's answer
    assert events[reset_at] == Reset(primary, "connection error" if fault == "cut" else "timeout")
    after = "".join(e.text for e in events[reset_at:] if isinstance(e, Delta))
    assert after == "The fallback's whole answer." and reply.provider == OTHER[primary]
    await chain.aclose()


@pytest.mark.parametrize(
    "fault", [{"mode": "status", "status": 500}, {"mode": "hang"}, {"mode": "malformed"}]
)
async def test_rest_whole_replies_fail_over_too(
    llm_settings, openai_fake, gemini_fake, local, fault
):
    openai_fake.fake.set(**fault)
    chain = build_responders(llm_settings(provider_timeout=0.3), local)
    reply = await chain.respond(PROMPT)
    assert reply.provider == "gemini"
    assert "stream" not in gemini_fake.fake.requests[-1]["target"]  # a whole reply was asked for
    await chain.aclose()


async def test_retry_after_is_honoured_and_the_retry_succeeds(
    llm_settings, openai_fake, local, caplog
):
    caplog.set_level(logging.INFO, "services.responders.chain")
    openai_fake.fake.set(mode="status", status=429, retry_after="0.3", fail_times=1)
    chain = build_responders(llm_settings(), local)
    _, reply = await answer(chain)
    assert reply.provider == "openai"
    waits = [r.wait_s for r in caplog.records if r.getMessage() == "retrying responder"]
    assert waits == [0.3]  # it waited as told before retrying
    assert chain.status()["openai"]["retries"] == 1
    await chain.aclose()


async def test_gemini_retry_info_is_honoured(llm_settings, openai_fake, gemini_fake, local, caplog):
    caplog.set_level(logging.INFO, "services.responders.chain")
    gemini_fake.fake.set(mode="status", status=429, retry_delay="0.2s", fail_times=1)
    chain = build_responders(llm_settings(ai_provider_order="gemini,local"), local)
    _, reply = await answer(chain)
    assert reply.provider == "gemini"
    assert [r.wait_s for r in caplog.records if r.getMessage() == "retrying responder"] == [0.2]
    await chain.aclose()


async def test_a_long_retry_after_moves_on_instead_of_keeping_the_customer_waiting(
    llm_settings, openai_fake, gemini_fake, local
):
    openai_fake.fake.set(mode="status", status=429, retry_after="120")
    chain = build_responders(llm_settings(), local)
    _, reply = await answer(chain)
    assert reply.provider == "gemini" and chain.status()["openai"]["attempts"] == 1
    await chain.aclose()


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "whole"])
async def test_both_llms_down_the_embedded_responder_answers(
    llm_settings, openai_fake, gemini_fake, local, streaming
):
    openai_fake.fake.set(mode="status", status=503)
    gemini_fake.fake.set(mode="status", status=500)
    chain = build_responders(llm_settings(), local)
    reply = (await answer(chain))[1] if streaming else await chain.respond(PROMPT)
    assert reply.provider == "local" and "3-5 business days" in reply.text
    await chain.aclose()


async def test_all_down_raises_all_responders_failed_with_every_reason(
    llm_settings, openai_fake, gemini_fake, local
):
    openai_fake.fake.set(mode="status", status=503)
    gemini_fake.fake.set(mode="status", status=401)
    chain = build_responders(llm_settings(ai_provider_order="openai,gemini"), local)
    with pytest.raises(AllRespondersFailed) as err:
        await answer(chain)
    assert err.value.reasons == {"openai": "server error (503)", "gemini": "not authorised (401)"}
    assert "openai: server error (503)" in err.value.detail
    await chain.aclose()


async def test_the_overall_deadline_bounds_a_hanging_primary(
    llm_settings, openai_fake, gemini_fake, local
):
    openai_fake.fake.set(mode="hang")
    gemini_fake.fake.set(mode="hang")
    chain = build_responders(
        llm_settings(
            provider_timeout=5,
            provider_first_token_timeout=5,
            message_deadline=0.6,
            provider_max_retries=3,
        ),
        local,
    )
    _, reply = await answer(chain)
    assert reply.provider == "local"  # the in-process responder still gets its turn
    status = chain.status()
    assert status["openai"]["attempts"] == 1 and status["openai"]["lastError"] == "timeout"
    assert status["gemini"]["attempts"] == 0 and status["gemini"]["skipped"] == 1
    await chain.aclose()


async def test_the_breaker_opens_after_repeated_failures_and_recovers_after_cool_down(
    llm_settings, openai_fake, gemini_fake, local
):
    openai_fake.fake.set(mode="status", status=500)
    chain = build_responders(
        llm_settings(breaker_failure_threshold=2, breaker_cooldown=0.3, provider_max_retries=1),
        local,
    )
    _, reply = await answer(chain)
    assert reply.provider == "gemini" and chain.status()["openai"]["state"] == "open"
    seen = len(openai_fake.fake.requests)
    _, reply = await answer(chain)
    assert (
        reply.provider == "gemini" and len(openai_fake.fake.requests) == seen
    )  # skipped, no traffic
    assert chain.status()["openai"]["skipped"] == 1
    openai_fake.fake.set(answer="OpenAI is back.")
    await asyncio.sleep(0.35)
    _, reply = await answer(chain)
    assert reply.provider == "openai" and reply.text == "OpenAI is back."
    assert (
        chain.status()["openai"]["state"] == "closed" and len(openai_fake.fake.requests) == seen + 1
    )
    await chain.aclose()


async def test_a_failed_half_open_probe_opens_the_breaker_again(
    llm_settings, openai_fake, gemini_fake, local
):
    openai_fake.fake.set(mode="status", status=500)
    chain = build_responders(
        llm_settings(breaker_failure_threshold=1, breaker_cooldown=0.2, provider_max_retries=0),
        local,
    )
    await answer(chain)
    await asyncio.sleep(0.25)
    seen = len(openai_fake.fake.requests)
    _, reply = await answer(chain)  # the probe fails
    assert reply.provider == "gemini" and len(openai_fake.fake.requests) == seen + 1
    assert chain.status()["openai"]["state"] == "open"
    await chain.aclose()


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"gemini_api_key": None, "gemini_base_url": None}, ["openai", "local"]),  # OpenAI only
        ({"openai_api_key": None, "openai_base_url": None}, ["gemini", "local"]),  # Gemini only
        ({}, ["openai", "gemini", "local"]),  # both
        (
            {"openai_api_key": None, "openai_base_url": None, "gemini_api_key": None},
            ["local"],
        ),  # none
    ],
)
async def test_the_briefs_provider_setups(
    llm_settings, gemini_fake, openai_fake, local, keys, expected
):
    chain = build_responders(llm_settings(**keys), local)
    assert chain.names == expected
    _, reply = await answer(chain)
    assert reply.provider == expected[0]
    if expected[0] != "local":  # and its fallback takes over when it fails
        (openai_fake if expected[0] == "openai" else gemini_fake).fake.set(
            mode="status", status=401
        )
        _, reply = await answer(chain)
        assert reply.provider == expected[1]
    await chain.aclose()


async def test_token_usage_is_summed_per_provider(llm_settings, openai_fake, gemini_fake, local):
    chain = build_responders(llm_settings(), local)
    for _ in range(3):
        await answer(chain)
    await chain.respond(PROMPT)
    openai_fake.fake.set(mode="status", status=401)
    gemini_fake.fake.set(prompt_tokens=100, completion_tokens=7)
    await answer(chain)
    status = chain.status()
    assert status["openai"]["tokens"] == {"prompt": 168, "completion": 68}
    assert status["gemini"]["tokens"] == {"prompt": 100, "completion": 7}
    assert status["local"]["tokens"] == {"prompt": 0, "completion": 0}
    await chain.aclose()
