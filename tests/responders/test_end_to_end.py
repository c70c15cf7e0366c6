"""The whole product with LLM providers: REST and Socket.IO against fake OpenAI/Gemini."""

from tests.conftest import HEALTH_DETAIL, new_session
from tests.test_sockets import Client


async def test_rest_reply_from_openai_grounded_with_sources_and_usage(server_factory, openai_fake):
    openai_fake.fake.set(
        answer="Standard shipping takes 3-5 business days.",
        confidence=0.91,
        sources=["shipping_time"],
    )
    srv = await server_factory(openai_api_key="sk-test", openai_base_url=openai_fake.openai_url)
    async with srv.client() as api:
        sid = await new_session(api)
        body = (
            await api.post(
                "/api/v1/chat/message",
                json={"sessionId": sid, "message": "How long does shipping take?"},
            )
        ).json()
        assert body["provider"] == "openai" and body["confidence"] == 0.91
        assert [s["id"] for s in body["sources"]] == ["shipping_time"]
        assert body["sources"][0]["url"] == "https://acme.example/help/shipping/times"
        assert body["usage"] == {"promptTokens": 42, "completionTokens": 17}
        user_turn = openai_fake.fake.requests[-1]["body"]["messages"][-1]["content"]
        assert "Standard shipping takes 3-5 business days" in user_turn  # grounded in the KB
        history = (await api.get(f"/api/v1/chat/history/{sid}")).json()["history"]
        assert history[1]["provider"] == "openai" and history[1]["usage"]["promptTokens"] == 42
        health = (await api.get("/api/v1/health", headers=HEALTH_DETAIL)).json()
        assert health["services"]["openai"] == "configured"
        assert health["responders"]["openai"]["tokens"] == {"prompt": 42, "completion": 17}
        assert list(health["responders"]) == ["openai", "local", "gemini"]
        assert health["responders"]["gemini"] == {
            "configured": False,
            "model": "gemini-2.5-flash",
            "state": "not_configured",
        }


async def test_low_model_confidence_escalates(server_factory, openai_fake):
    openai_fake.fake.set(answer="I think maybe?", confidence=0.2)
    srv = await server_factory(openai_api_key="sk-test", openai_base_url=openai_fake.openai_url)
    async with srv.client() as api:
        sid = await new_session(api)
        body = (
            await api.post(
                "/api/v1/chat/message", json={"sessionId": sid, "message": "Do you sell boats?"}
            )
        ).json()
        assert (
            body["needsEscalation"] and body["escalation"]["reasons"][0]["rule"] == "low_confidence"
        )


async def test_all_providers_down_is_a_technical_error_escalation_not_a_500(
    server_factory, openai_fake, gemini_fake
):
    openai_fake.fake.set(mode="status", status=503)
    gemini_fake.fake.set(mode="status", status=500)
    srv = await server_factory(
        openai_api_key="sk-test",
        openai_base_url=openai_fake.openai_url,
        gemini_api_key="g",
        gemini_base_url=gemini_fake.gemini_url,
        ai_provider_order="openai,gemini",
        provider_max_retries=0,
    )
    async with srv.client() as api:
        sid = await new_session(api)
        res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "hello"})
        assert res.status_code == 200
        body = res.json()
        assert body["provider"] == "none" and body["needsEscalation"]
        assert [r["rule"] for r in body["escalation"]["reasons"]] == ["technical_error"]
        health = (await api.get("/health", headers=HEALTH_DETAIL)).json()
        assert health["responders"]["openai"]["lastError"] == "server error (503)"


async def test_sockets_receive_chunks_then_the_final_message(
    server_factory, openai_fake, gemini_fake
):
    openai_fake.fake.set(  # past the output check's hold-back (60 characters), so it shows
        mode="cut",
        cut_after=20,
        chunk_size=5,
        answer="OpenAI starts but never finishes: " + "and goes on talking " * 8,
    )
    gemini_fake.fake.set(answer="Gemini answers in full.", chunk_size=4)
    srv = await server_factory(
        openai_api_key="sk-test",
        openai_base_url=openai_fake.openai_url,
        gemini_api_key="g",
        gemini_base_url=gemini_fake.gemini_url,
        provider_max_retries=0,
    )
    client = await Client().connect(srv.url)
    try:
        await client.emit("join-chat", {"userId": "u1"})
        sid = (await client.wait_for("chat-joined"))[-1]["sessionId"]
        await client.emit(
            "send-message", {"sessionId": sid, "message": "How long does shipping take?"}
        )
        final = (await client.wait_for("message-received"))[-1]
        assert final["provider"] == "gemini" and final["message"] == "Gemini answers in full."
        resets = client.received["message-reset"]
        assert resets and resets[0]["messageId"] == final["messageId"]
        chunks = [
            c for c in client.received["message-chunk"] if c["messageId"] == final["messageId"]
        ]
        assert chunks and "".join(c["delta"] for c in chunks).endswith("Gemini answers in full.")
    finally:
        await client.close()
