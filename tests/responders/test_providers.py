"""Each provider through its official SDK against a fake server speaking its real protocol:
the request it sends (grounding, schema, history, keys), the reply it reads (structured
output, streaming, usage), and how each failure is typed for the chain."""

import json

import pytest

from services.responders.base import Delta, Prompt, Reply, ResponderError, Turn
from services.responders.gemini import GeminiResponder
from services.responders.openai import OpenAIResponder
from tests.responders.conftest import PROMPT, closed_port_url

PROVIDERS = {"openai": OpenAIResponder, "gemini": GeminiResponder}
HISTORY_PROMPT = Prompt(
    message="And to Canada?",
    context=PROMPT.context,
    history=(Turn("user", "How long does shipping take?"), Turn("assistant", "3-5 business days.")),
)


async def collect(responder, prompt=PROMPT):
    return [event async for event in responder.stream(prompt)]


@pytest.fixture
async def responders(llm_settings, openai_fake, gemini_fake):
    """Build a provider's responder against its fake; closed after the test."""
    created = []

    def build(provider, **settings):
        responder = PROVIDERS[provider](llm_settings(**settings))
        created.append(responder)
        return responder, (openai_fake if provider == "openai" else gemini_fake).fake

    yield build
    for responder in created:
        await responder.aclose()


async def test_openai_request_is_grounded_and_asks_for_structured_output(responders):
    responder, fake = responders("openai", openai_model="gpt-4.1-mini")
    fake.set(
        answer="Standard shipping takes 3-5 business days.",
        confidence=0.87,
        sources=["shipping_time", "nope"],
    )
    reply = await responder.respond(HISTORY_PROMPT)
    assert reply.provider == "openai" and reply.text.startswith("Standard shipping")
    assert reply.confidence == pytest.approx(0.87) and not reply.needs_human
    assert [s.id for s in reply.sources] == ["shipping_time"]  # ids not in the context are dropped
    assert reply.sources[0].url == "https://acme.example/help/shipping/times"
    assert reply.usage.prompt_tokens == 42 and reply.usage.completion_tokens == 17
    request = fake.requests[-1]
    body = request["body"]
    assert request["headers"]["authorization"] == "Bearer sk-test"
    assert body["model"] == "gpt-4.1-mini" and "stream" not in body
    schema = body["response_format"]
    assert schema["type"] == "json_schema" and schema["json_schema"]["strict"] is True
    assert set(schema["json_schema"]["schema"]["required"]) == {
        "answer",
        "confidence",
        "needs_human",
        "human_reason",
        "sources",
    }
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    system = body["messages"][0]["content"]
    assert (
        "Acme Shop" in system and "Never invent prices" in system and "friendly, concise" in system
    )
    user = body["messages"][-1]["content"]
    assert '<entry id="shipping_time" title="Shipping times"' in user
    assert "Standard shipping takes 3-5 business days." in user and user.endswith(
        "<customer_message>\nAnd to Canada?\n</customer_message>"
    )


async def test_persona_company_and_policy_come_from_settings(responders):
    responder, fake = responders(
        "openai",
        company_name="Globex",
        bot_persona="a pirate",
        company_policy="Only talk about boats.",
    )
    await responder.respond(PROMPT)
    system = fake.requests[-1]["body"]["messages"][0]["content"]
    assert "a pirate for Globex" in system and "Only talk about boats." in system


async def test_openai_streams_the_answer_text_as_it_arrives(responders):
    responder, fake = responders("openai")
    fake.set(answer='Line one\nand a "quoted" part — done. 🚚', chunk_size=5)
    events = await collect(responder)
    deltas = [e.text for e in events if isinstance(e, Delta)]
    assert (
        len(deltas) > 3
        and "".join(deltas) == events[-1].text == 'Line one\nand a "quoted" part — done. 🚚'
    )
    assert isinstance(events[-1], Reply) and events[-1].usage.total_tokens == 59
    body = fake.requests[-1]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_an_openai_compatible_server_without_a_key(llm_settings, openai_fake):
    responder = OpenAIResponder(llm_settings(openai_api_key=None))
    assert (await responder.respond(PROMPT)).provider == "openai"
    assert openai_fake.fake.requests[-1]["headers"]["authorization"] == "Bearer not-needed"
    await responder.aclose()


async def test_gemini_request_and_reply_through_google_genai(responders):
    responder, fake = responders("gemini", gemini_model="gemini-2.5-flash")
    fake.set(
        answer="Express shipping takes 1-2 business days.",
        confidence=0.8,
        sources=["shipping_time"],
    )
    reply = await responder.respond(HISTORY_PROMPT)
    assert (
        reply.provider == "gemini" and reply.text.startswith("Express") and reply.confidence == 0.8
    )
    assert [s.id for s in reply.sources] == ["shipping_time"] and reply.usage.prompt_tokens == 42
    request = fake.requests[-1]
    assert request["target"] == "gemini-2.5-flash:generateContent"
    assert request["headers"]["x-goog-api-key"] == "g-test"
    body = request["body"]
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["required"][0] == "answer"
    assert "Acme Shop" in json.dumps(body["systemInstruction"])
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert '<entry id="shipping_time"' in body["contents"][-1]["parts"][0]["text"]


async def test_gemini_streams_the_answer_text_as_it_arrives(responders):
    responder, fake = responders("gemini")
    fake.set(answer="Express: 1-2 days \\o/ — ✈️", chunk_size=6)
    events = await collect(responder)
    deltas = [e.text for e in events if isinstance(e, Delta)]
    assert len(deltas) > 2 and "".join(deltas) == events[-1].text == "Express: 1-2 days \\o/ — ✈️"
    assert events[-1].usage.completion_tokens == 17
    request = fake.requests[-1]
    assert (
        request["target"] == "gemini-2.5-flash:streamGenerateContent"
        and request["query"]["alt"] == "sse"
    )


@pytest.mark.parametrize("provider", ["openai", "gemini"])
@pytest.mark.parametrize(
    ("behaviour", "reason", "retryable", "misconfigured"),
    [
        ({"mode": "status", "status": 500}, "server error (500)", True, False),
        ({"mode": "status", "status": 503}, "server error (503)", True, False),
        ({"mode": "status", "status": 429, "retry_after": "7"}, "rate limited (429)", True, False),
        ({"mode": "status", "status": 401}, "not authorised (401)", False, True),
        ({"mode": "status", "status": 403}, "not authorised (403)", False, True),
        ({"mode": "status", "status": 404}, "model not found (404)", False, True),
        ({"mode": "malformed"}, "malformed reply", False, False),
        ({"mode": "wrong_schema"}, "malformed reply", False, False),
        ({"mode": "not_json"}, "malformed response", False, False),
    ],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
async def test_failures_map_to_typed_errors(
    responders, provider, behaviour, reason, retryable, misconfigured, streaming
):
    responder, fake = responders(provider)
    fake.set(**behaviour)
    with pytest.raises(ResponderError) as err:
        await (collect(responder) if streaming else responder.respond(PROMPT))
    e = err.value
    if behaviour["mode"] == "not_json" and streaming:  # SSE that is not SSE: no events at all
        assert e.reason in ("malformed reply", "malformed response")
    else:
        assert e.reason == reason
    assert (e.provider, e.retryable, e.misconfigured) == (provider, retryable, misconfigured)
    if behaviour.get("retry_after"):
        assert e.retry_after == 7


@pytest.mark.parametrize(
    "odd",
    [[1, 2], "text", {"choices": "none"}, {"choices": [{"delta": "x"}]}, {"choices": [7]}],
    ids=["list", "string", "choices-not-a-list", "delta-not-an-object", "choice-not-an-object"],
)
async def test_an_openai_stream_event_that_is_not_a_chunk_is_a_malformed_response(responders, odd):
    responder, fake = responders("openai")
    fake.set(mode="odd_chunks", odd_chunk=odd)
    with pytest.raises(ResponderError) as err:
        await collect(responder)
    assert (err.value.reason, err.value.retryable) == ("malformed response", False)


async def test_gemini_retry_info_in_the_error_body_is_a_retry_after(responders):
    responder, fake = responders("gemini")
    fake.set(mode="status", status=429, retry_delay="1.5s")
    with pytest.raises(ResponderError) as err:
        await responder.respond(PROMPT)
    assert err.value.reason == "rate limited (429)" and err.value.retry_after == 1.5


async def test_gemini_answers_a_bad_key_with_400_and_that_is_not_authorised(responders):
    responder, fake = responders("gemini")
    fake.set(
        mode="status", status=400, error_message="API key not valid. Please pass a valid API key."
    )
    with pytest.raises(ResponderError) as err:
        await responder.respond(PROMPT)
    assert err.value.reason == "not authorised (400)" and err.value.misconfigured


async def test_a_400_about_one_message_does_not_mark_openai_misconfigured(responders):
    responder, fake = responders("openai")
    fake.set(mode="status", status=400, error_code="context_length_exceeded")
    with pytest.raises(ResponderError) as err:
        await responder.respond(PROMPT)
    assert (
        err.value.reason == "request refused (400)"
        and not err.value.retryable
        and not err.value.misconfigured
    )
    fake.set(mode="status", status=400, error_code="invalid_request_error")
    with pytest.raises(ResponderError) as err:
        await responder.respond(PROMPT)
    assert err.value.misconfigured  # e.g. a model that cannot do structured output


async def test_openai_quota_exhausted_is_not_retried(responders):
    responder, fake = responders("openai")
    fake.set(mode="status", status=429, error_code="insufficient_quota")
    with pytest.raises(ResponderError) as err:
        await responder.respond(PROMPT)
    assert err.value.reason == "quota exhausted (429)" and not err.value.retryable


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
async def test_an_openai_refusal_is_a_failure(responders, streaming):
    responder, fake = responders("openai")
    fake.set(mode="refusal")
    with pytest.raises(ResponderError) as err:
        await (collect(responder) if streaming else responder.respond(PROMPT))
    assert err.value.reason == "model refused" and not err.value.retryable


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
async def test_a_gemini_safety_block_is_a_failure(responders, streaming):
    responder, fake = responders("gemini")
    fake.set(mode="blocked")
    with pytest.raises(ResponderError) as err:
        await (collect(responder) if streaming else responder.respond(PROMPT))
    assert err.value.reason == "blocked" and err.value.detail == "SAFETY"


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_a_stream_cut_midway_is_a_retryable_connection_error_after_some_text(
    responders, provider
):
    responder, fake = responders(provider)
    fake.set(mode="cut", cut_after=4, chunk_size=6, answer="a long answer that never finishes")
    seen = []

    async def consume() -> None:
        async for event in responder.stream(PROMPT):
            seen.append(event)

    with pytest.raises(ResponderError) as err:
        await consume()
    assert seen and all(isinstance(e, Delta) for e in seen)
    assert err.value.reason == "connection error" and err.value.retryable


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_connection_refused_is_a_retryable_connection_error(llm_settings, provider):
    url = closed_port_url()
    settings = llm_settings(openai_base_url=url, gemini_base_url=url.removesuffix("/v1"))
    responder = PROVIDERS[provider](settings)
    with pytest.raises(ResponderError) as err:
        await responder.respond(PROMPT)
    assert err.value.reason == "connection error" and err.value.retryable
    await responder.aclose()


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_the_sdk_timeout_is_a_retryable_timeout(responders, provider):
    responder, fake = responders(provider, provider_timeout=0.2)
    fake.set(mode="hang")
    with pytest.raises(ResponderError) as err:
        await responder.respond(PROMPT)
    assert err.value.reason == "timeout" and err.value.retryable
