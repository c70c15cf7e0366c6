"""The failover chain on its own, with scripted in-memory responders: retries and backoff,
Retry-After, misconfiguration, timeouts, the deadline, streaming resets, breakers, counts
and logs. No network; small timeouts; no assertions on elapsed time."""

import asyncio
import logging

import pytest

from services.responders.base import Delta, Prompt, Reply, Reset, ResponderError, Usage
from services.responders.chain import AllRespondersFailed, Policy, ResponderChain, parse_retry_after
from tests.responders.scripted import Scripted, Step, fail, hang, ok

PROMPT = Prompt("where is my parcel 12345?")
FAST = {
    "attempt_timeout": 0.3,
    "first_token_timeout": 0.15,
    "deadline": 3.0,
    "max_retries": 2,
    "backoff_base": 0.01,
    "backoff_max": 0.05,
    "breaker_threshold": 3,
    "breaker_cooldown": 60,
}


def chain(*responders, **policy):
    return ResponderChain(list(responders), Policy(**{**FAST, **policy}))


async def events_of(chain_, prompt=PROMPT):
    return [event async for event in chain_.stream(prompt)]


def records(caplog, message):
    return [r for r in caplog.records if r.getMessage() == message]


async def test_the_first_responder_answers_and_the_others_are_not_asked():
    first, second = (
        Scripted("openai", [ok("Hello", " there", usage=Usage(10, 4))]),
        Scripted("gemini"),
    )
    c = chain(first, second)
    events = await events_of(c)
    assert [type(e) for e in events] == [Delta, Delta, Reply]
    assert events[-1].provider == "openai" and events[-1].text == "Hello there"
    assert second.calls == []
    status = c.status()["openai"]
    assert status["attempts"] == status["successes"] == 1 and status["failures"] == 0
    assert (
        status["tokens"] == {"prompt": 10, "completion": 4} and status["lastLatencyMs"] is not None
    )
    assert status["state"] == "closed" and status["configured"] is True


async def test_respond_uses_each_responders_whole_reply_and_stream_its_stream():
    first = Scripted("openai", [fail("openai"), ok("whole")])
    c = chain(first)
    reply = await c.respond(PROMPT)
    assert reply.text == "whole" and first.calls == ["respond", "respond"]
    await events_of(c)
    assert first.calls[-1] == "stream"


async def test_a_retryable_failure_is_retried_with_jittered_exponential_backoff(caplog):
    caplog.set_level(logging.INFO, "services.responders.chain")
    only = Scripted("openai", [fail("openai")] * 3 + [ok("at last")])
    c = chain(only, max_retries=3, backoff_base=0.01, backoff_max=1.0, breaker_threshold=10)
    reply = await c.respond(PROMPT)
    assert reply.text == "at last" and len(only.calls) == 4
    waits = [r.wait_s for r in records(caplog, "retrying responder")]
    caps = [0.01, 0.02, 0.04]
    assert len(waits) == 3 and all(cap / 2 <= w <= cap for w, cap in zip(waits, caps, strict=True))
    status = c.status()["openai"]
    assert status["retries"] == 3 and status["failures"] == 3 and status["successes"] == 1


async def test_retries_stop_after_max_retries_then_the_fallback_answers():
    first, second = (
        Scripted("openai", [fail("openai", "server error (503)")]),
        Scripted("gemini", [ok("g")]),
    )
    c = chain(first, second, max_retries=2)
    reply = await c.respond(PROMPT)
    assert reply.provider == "gemini" and len(first.calls) == 3


@pytest.mark.parametrize(
    ("reason", "misconfigured"),
    [
        ("not authorised (401)", True),
        ("request refused (404)", True),
        ("malformed reply", False),
    ],
)
async def test_a_non_retryable_failure_moves_on_at_once(reason, misconfigured):
    first = Scripted(
        "openai", [fail("openai", reason, retryable=False, misconfigured=misconfigured)]
    )
    c = chain(first, Scripted("gemini", [ok("g")]))
    reply = await c.respond(PROMPT)
    assert reply.provider == "gemini" and len(first.calls) == 1
    assert c.status()["openai"]["state"] == ("misconfigured" if misconfigured else "closed")
    assert c.status()["openai"]["lastError"] == reason


async def test_a_misconfigured_provider_is_skipped_until_its_cool_down():
    first = Scripted(
        "openai", [fail("openai", "not authorised (401)", retryable=False, misconfigured=True)]
    )
    c = chain(first, Scripted("gemini", [ok("g")]))
    await c.respond(PROMPT)
    await c.respond(PROMPT)
    assert len(first.calls) == 1 and c.status()["openai"]["skipped"] == 1


async def test_retry_after_within_the_backoff_cap_is_honoured(caplog):
    caplog.set_level(logging.INFO, "services.responders.chain")
    first = Scripted(
        "openai", [fail("openai", "rate limited (429)", retry_after=0.04), ok("after wait")]
    )
    c = chain(first, Scripted("gemini"), backoff_max=0.05)
    reply = await c.respond(PROMPT)
    assert reply.provider == "openai"
    assert [r.wait_s for r in records(caplog, "retrying responder")] == [0.04]


async def test_a_long_retry_after_moves_on_when_a_fallback_can_answer():
    first = Scripted("openai", [fail("openai", "rate limited (429)", retry_after=30)])
    c = chain(first, Scripted("gemini", [ok("g")]))
    assert (await c.respond(PROMPT)).provider == "gemini" and len(first.calls) == 1


async def test_a_long_retry_after_is_waited_for_when_nothing_else_can_answer(caplog):
    caplog.set_level(logging.INFO, "services.responders.chain")
    first = Scripted(
        "openai", [fail("openai", "rate limited (429)", retry_after=0.2), ok("worth the wait")]
    )
    c = chain(first, backoff_max=0.05, deadline=3)
    assert (await c.respond(PROMPT)).text == "worth the wait"
    assert [r.wait_s for r in records(caplog, "retrying responder")] == [0.2]


async def test_a_retry_after_beyond_the_deadline_gives_up():
    first = Scripted("openai", [fail("openai", "rate limited (429)", retry_after=60), ok()])
    with pytest.raises(AllRespondersFailed) as err:
        await chain(first, deadline=1).respond(PROMPT)
    assert len(first.calls) == 1 and err.value.reasons == {"openai": "rate limited (429)"}


async def test_a_hanging_responder_times_out_and_the_fallback_answers_without_a_retry():
    first = Scripted("openai", [hang()])
    c = chain(first, Scripted("gemini", [ok("g")]))
    reply = await c.respond(PROMPT)
    assert reply.provider == "gemini" and len(first.calls) == 1 and first.cancelled == 1
    assert c.status()["openai"]["lastError"] == "timeout"


async def test_a_timeout_is_retried_when_no_fallback_is_left():
    first = Scripted("openai", [hang(), ok("second try")])
    assert (await chain(first).respond(PROMPT)).text == "second try"


async def test_no_first_chunk_in_time_hands_over_unseen():
    first = Scripted("openai", [Step(chunks=("late",), first_delay=5)])
    c = chain(
        first, Scripted("gemini", [ok("G", "emini")]), attempt_timeout=2, first_token_timeout=0.05
    )
    events = await events_of(c)
    assert [e.text for e in events if isinstance(e, Delta)] == ["G", "emini"]
    assert not any(isinstance(e, Reset) for e in events) and events[-1].provider == "gemini"
    assert c.status()["openai"]["lastError"] == "no first token in time"


async def test_the_first_token_timeout_does_not_bound_a_whole_reply():
    first = Scripted("openai", [Step(chunks=("a", "b", "c"), delay=0.05)])
    c = chain(first, attempt_timeout=2, first_token_timeout=0.06)
    assert (await events_of(c))[-1].text == "abc"


async def test_a_failure_mid_stream_resets_and_the_fallback_replaces_the_text():
    first = Scripted("openai", [fail("openai", "connection error", after=("Our ", "ret"))])
    c = chain(first, Scripted("gemini", [ok("Returns ", "are free.")]), max_retries=2)
    events = await events_of(c)
    assert events == [
        Delta("Our "),
        Delta("ret"),
        Reset("openai", "connection error"),
        Delta("Returns "),
        Delta("are free."),
        events[-1],
    ]
    assert (
        events[-1].provider == "gemini" and len(first.calls) == 1
    )  # no retry: the fallback is sooner


async def test_a_failure_mid_stream_is_retried_when_nothing_else_can_answer():
    first = Scripted(
        "openai", [fail("openai", "connection error", after=("Our ",)), ok("Our policy.")]
    )
    events = await events_of(chain(first))
    assert events == [
        Delta("Our "),
        Reset("openai", "connection error"),
        Delta("Our policy."),
        events[-1],
    ]


async def test_a_stall_mid_stream_hits_the_attempt_timeout_and_resets():
    first = Scripted("openai", [hang(after=("Our ",))])
    c = chain(first, Scripted("gemini", [ok("g")]), attempt_timeout=0.1, first_token_timeout=0.1)
    events = await events_of(c)
    assert Reset("openai", "timeout") in events and events[-1].provider == "gemini"


async def test_a_stream_that_ends_without_a_reply_is_a_failure():
    first = Scripted("openai", [Step(chunks=("half",), no_reply=True)])
    c = chain(first, Scripted("gemini", [ok("g")]))
    events = await events_of(c)
    assert (
        Reset("openai", "stream ended without a reply") in events
        and events[-1].provider == "gemini"
    )


async def test_a_responder_bug_is_contained_and_moves_on():
    first = Scripted("openai", [Step(error=KeyError("oops"))])
    c = chain(first, Scripted("gemini", [ok("g")]))
    assert (await c.respond(PROMPT)).provider == "gemini" and len(first.calls) == 1
    assert c.status()["openai"]["lastError"] == "unexpected error (KeyError)"


async def test_the_deadline_skips_remote_responders_but_the_in_process_one_answers():
    first, second = Scripted("openai", [hang()]), Scripted("gemini", [ok("g")])
    local = Scripted("local", [ok("from the knowledge base")], in_process=True)
    c = chain(first, second, local, attempt_timeout=5, first_token_timeout=5, deadline=0.1)
    events = await events_of(c)
    assert events[-1].provider == "local" and second.calls == []
    assert c.status()["gemini"]["skipped"] == 1


async def test_all_failing_raises_all_responders_failed_with_each_reason():
    c = chain(
        Scripted(
            "openai", [fail("openai", "not authorised (401)", retryable=False, misconfigured=True)]
        ),
        Scripted("gemini", [fail("gemini", "server error (500)")]),
        max_retries=1,
    )
    with pytest.raises(AllRespondersFailed) as err:
        await events_of(c)
    assert isinstance(err.value, ResponderError) and not err.value.retryable
    assert err.value.reasons == {"openai": "not authorised (401)", "gemini": "server error (500)"}
    assert err.value.detail == (
        "openai: not authorised (401); gemini: server error (500); gemini: server error (500)"
    )


async def test_the_breaker_opens_after_n_failures_skips_then_lets_one_probe_through():
    first = Scripted("openai", [fail("openai")] * 3 + [ok("back")])
    second = Scripted("gemini", [ok("g")])
    c = chain(first, second, breaker_threshold=3, max_retries=0, breaker_cooldown=0.05)
    for _ in range(3):
        assert (await c.respond(PROMPT)).provider == "gemini"
    assert c.status()["openai"]["state"] == "open"
    assert (await c.respond(PROMPT)).provider == "gemini"
    assert len(first.calls) == 3 and c.status()["openai"]["skipped"] == 1
    await asyncio.sleep(0.06)
    assert (await c.respond(PROMPT)).provider == "openai"
    assert (
        c.status()["openai"]["state"] == "closed"
        and c.status()["openai"]["consecutiveFailures"] == 0
    )


async def test_half_open_lets_exactly_one_probe_through_while_others_fall_back():
    first = Scripted("openai", [fail("openai", retryable=False), ok("probe answer")])
    second = Scripted("gemini", [ok("g")])
    c = chain(first, second, breaker_threshold=1, breaker_cooldown=0.01)
    await c.respond(PROMPT)
    await asyncio.sleep(0.02)
    first.gate = asyncio.Event()  # the probe waits until released
    probe = asyncio.create_task(c.respond(PROMPT))
    await asyncio.sleep(0.01)
    assert c.status()["openai"]["state"] == "half_open"
    others = await asyncio.gather(*(c.respond(PROMPT) for _ in range(3)))
    assert {r.provider for r in others} == {"gemini"} and len(first.calls) == 2
    first.gate.set()
    assert (await probe).provider == "openai" and c.status()["openai"]["state"] == "closed"


async def test_a_caller_leaving_mid_stream_frees_the_half_open_probe():
    first = Scripted("openai", [fail("openai", retryable=False), hang(after=("par",)), ok("ok")])
    c = chain(first, Scripted("gemini", [ok("g")]), breaker_threshold=1, breaker_cooldown=0.01)
    await c.respond(PROMPT)
    await asyncio.sleep(0.02)
    stream = c.stream(PROMPT)
    assert await anext(stream) == Delta("par")
    await stream.aclose()  # the customer went away
    assert c.status()["openai"]["state"] == "half_open"
    assert (await c.respond(PROMPT)).provider == "openai"  # the probe was not left taken


async def test_every_attempt_failure_and_switch_is_logged_with_reasons_but_never_the_message(
    caplog,
):
    caplog.set_level(logging.DEBUG, "services.responders.chain")
    c = chain(
        Scripted("openai", [fail("openai", "server error (503)")]),
        Scripted("gemini", [ok("g")]),
        max_retries=1,
    )
    await c.respond(PROMPT)
    assert [(r.provider, r.attempt) for r in records(caplog, "responder attempt")] == [
        ("openai", 1),
        ("openai", 2),
        ("gemini", 1),
    ]
    failed = records(caplog, "responder failed")
    assert [(r.provider, r.reason, r.retryable) for r in failed] == [
        ("openai", "server error (503)", True)
    ] * 2
    (switch,) = records(caplog, "switching responder")
    assert (switch.from_provider, switch.to_provider, switch.reason) == (
        "openai",
        "gemini",
        "server error (503)",
    )
    (answered,) = records(caplog, "responder answered")
    assert answered.provider == "gemini" and answered.latency_ms >= 0
    for record in caplog.records:
        assert "parcel" not in record.getMessage() and "parcel" not in repr(record.__dict__)


async def test_the_breaker_opening_is_logged(caplog):
    caplog.set_level(logging.INFO, "services.responders.chain")
    c = chain(
        Scripted("openai", [fail("openai")]), Scripted("gemini"), breaker_threshold=2, max_retries=1
    )
    await c.respond(PROMPT)
    (opened,) = records(caplog, "breaker opened")
    assert opened.provider == "openai" and opened.state == "open"
    await c.respond(PROMPT)
    assert records(caplog, "responder skipped")[-1].reason == "breaker open"


async def test_aclose_closes_every_responder_even_when_one_fails():
    class Broken(Scripted):
        async def aclose(self):
            raise RuntimeError("boom")

    first, second = Broken("openai"), Scripted("gemini")
    await chain(first, second).aclose()
    assert second.closed


def test_a_chain_needs_a_responder():
    with pytest.raises(ValueError, match="at least one responder"):
        ResponderChain([])


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: now
        ({"retry-after": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_headers(headers, seconds):
    assert parse_retry_after(headers) == seconds
