"""Each provider through its official SDK against a fake server speaking its real protocol."""

import json

import pytest

from services.responders.base import Delta, Reply, ResponderError
from services.responders.gemini import GeminiResponder
from services.responders.openai import OpenAIResponder
from tests.responders.conftest import PROMPT


async def collect(responder, prompt=PROMPT):
    return [event async for event in responder.stream(prompt)]


async def test_openai_answers_with_structured_output_grounded_in_the_knowledge(llm_settings, openai_fake):
    openai_fake.fake.set(answer="Standard shipping takes 3-5 business days.", confidence=0.87, sources=["shipping_time"])
    responder = OpenAIResponder(llm_settings(openai_model="gpt-4.1-mini"))
    reply = await responder.respond(PROMPT)
    assert reply.provider == "openai" and reply.text.startswith("Standard shipping")
    assert reply.confidence == pytest.approx(0.87)
    assert [s.id for s in reply.sources] == ["shipping_time"]
    assert reply.usage.prompt_tokens == 42 and reply.usage.completion_tokens == 17
    request = openai_fake.fake.requests[-1]
    body = request["body"]
    assert request["headers"]["authorization"] == "Bearer sk-test"
    assert body["model"] == "gpt-4.1-mini"
    assert body["response_format"]["type"] == "json_schema"
    assert body["messages"][0]["role"] == "system" and "Acme Shop" in body["messages"][0]["content"]
    user = body["messages"][-1]["content"]
    assert '<entry id="shipping_time"' in user and "Customer: How long does shipping take?" in user
    await responder.aclose()


async def test_openai_streams_the_answer_text_as_it_arrives(llm_settings, openai_fake):
    openai_fake.fake.set(answer='Line one\nand a "quoted" part — done.', chunk_size=5)
    responder = OpenAIResponder(llm_settings())
    events = await collect(responder)
    deltas = [e.text for e in events if isinstance(e, Delta)]
    assert len(deltas) > 3
    assert "".join(deltas) == 'Line one\nand a "quoted" part — done.'
    assert isinstance(events[-1], Reply) and events[-1].usage.total_tokens == 59
    body = openai_fake.fake.requests[-1]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    await responder.aclose()


async def test_gemini_answers_and_streams_through_google_genai(llm_settings, gemini_fake):
    gemini_fake.fake.set(answer="Express shipping takes 1-2 business days.", confidence=0.8, chunk_size=6)
    responder = GeminiResponder(llm_settings(gemini_model="gemini-2.5-flash"))
    reply = await responder.respond(PROMPT)
    assert reply.provider == "gemini" and reply.text.startswith("Express") and reply.usage.prompt_tokens == 42
    events = await collect(responder)
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "Express shipping takes 1-2 business days."
    first, second = gemini_fake.fake.requests
    assert first["target"] == "gemini-2.5-flash:generateContent"
    assert second["target"] == "gemini-2.5-flash:streamGenerateContent"
    assert first["headers"]["x-goog-api-key"] == "g-test"
    config = first["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json" and "answer" in json.dumps(config["responseJsonSchema"])
    assert "Acme Shop" in json.dumps(first["body"]["systemInstruction"])
    await responder.aclose()


@pytest.mark.parametrize("provider", ["openai", "gemini"])
@pytest.mark.parametrize(("behaviour", "reason", "retryable"), [
    ({"mode": "status", "status": 500}, "server error (500)", True),
    ({"mode": "status", "status": 503}, "server error (503)", True),
    ({"mode": "status", "status": 429, "retry_after": "7"}, "rate limited (429)", True),
    ({"mode": "status", "status": 401}, "not authorised (401)", False),
    ({"mode": "status", "status": 404}, "request refused (404)", False),
    ({"mode": "malformed"}, "malformed reply", False),
])
async def test_failures_map_to_typed_errors(llm_settings, openai_fake, gemini_fake, provider, behaviour, reason, retryable):
    fake = openai_fake if provider == "openai" else gemini_fake
    fake.fake.set(**behaviour)
    responder = (OpenAIResponder if provider == "openai" else GeminiResponder)(llm_settings())
    with pytest.raises(ResponderError) as err:
        await responder.respond(PROMPT)
    assert err.value.reason == reason and err.value.retryable is retryable
    if behaviour.get("retry_after") and provider == "openai":
        assert err.value.retry_after == 7
    await responder.aclose()


async def test_connection_refused_is_a_retryable_connection_error(llm_settings):
    from tests.responders.conftest import closed_port_url

    responder = OpenAIResponder(llm_settings(openai_base_url=closed_port_url()))
    with pytest.raises(ResponderError) as err:
        await responder.respond(PROMPT)
    assert err.value.reason == "connection error" and err.value.retryable
    await responder.aclose()
