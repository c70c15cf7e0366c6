"""REST: sessions, messages and history, field for field as the seed's clients expect."""

import asyncio

import pytest

from tests.conftest import new_session

PROBLEM = "application/problem+json"


def assert_problem(res, status, code=None):
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith(PROBLEM)
    body = res.json()
    assert body["status"] == status and body["title"] and body["type"]
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in res.text
    if code:
        assert body["code"] == code
    return body


async def test_create_session_returns_the_seeds_fields_and_more(api):
    res = await api.post(
        "/api/v1/chat/session", json={"userId": "user123", "metadata": {"page": "/faq"}}
    )
    assert res.status_code == 200
    body = res.json()
    assert body["success"] is True and body["userId"] == "user123"
    assert body["status"] == "active"
    assert len(body["sessionId"]) >= 22  # >= 128 random bits in base64url
    assert body["createdAt"] < body["expiresAt"]


async def test_session_ids_are_unguessable(api):
    ids = {await new_session(api) for _ in range(20)}
    assert len(ids) == 20


async def test_send_message_answers_from_the_knowledge_base(api):
    sid = await new_session(api)
    res = await api.post(
        "/api/v1/chat/message",
        json={"sessionId": sid, "message": "How long does shipping take?", "userId": "user123"},
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["success"] is True
    assert body["provider"] == "local"
    assert body["needsEscalation"] is False
    assert 0.5 <= body["confidence"] <= 1
    assert "ship" in body["response"].lower() or "deliver" in body["response"].lower()
    assert body["messageId"] and body["timestamp"]
    assert body["sources"] and {"id", "title", "score"} <= set(body["sources"][0])


async def test_history_keeps_the_whole_transcript_oldest_first(api):
    sid = await new_session(api)
    for text in ("hello", "How do I reset my password?"):
        res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": text})
        assert res.status_code == 200
    res = await api.get(f"/api/v1/chat/history/{sid}")
    assert res.status_code == 200
    body = res.json()
    assert body["success"] is True
    roles = [entry["role"] for entry in body["history"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert body["history"][0]["content"] == "hello"
    assert body["history"][1]["provider"] == "local" and "confidence" in body["history"][1]
    assert all(entry["id"] and entry["timestamp"] for entry in body["history"])
    data = body["sessionData"]
    assert data["sessionId"] == sid and data["userId"] == "user123"
    assert data["createdAt"] <= data["lastActivity"]


async def test_a_different_user_id_is_accepted_and_recorded(api):
    sid = await new_session(api, "alice")
    res = await api.post(
        "/api/v1/chat/message", json={"sessionId": sid, "message": "hi", "userId": "bob"}
    )
    assert res.status_code == 200
    history = (await api.get(f"/api/v1/chat/history/{sid}")).json()["history"]
    assert history[0]["userId"] == "bob"


async def test_escalation_keyword_escalates_once_and_tells_the_customer(api):
    sid = await new_session(api)
    res = await api.post(
        "/api/v1/chat/message",
        json={"sessionId": sid, "message": "This is urgent, I need a refund"},
    )
    body = res.json()
    assert body["needsEscalation"] is True
    keywords = {r["detail"] for r in body["escalation"]["reasons"] if r["rule"] == "keyword"}
    assert keywords == {"urgent", "refund"}
    # no agent is online: the customer is told so honestly and may leave an e-mail address
    assert "Nobody from our team is available" in body["response"]
    assert body["contactRequested"] is True and body["status"] == "escalated"
    history = (await api.get(f"/api/v1/chat/history/{sid}")).json()
    assert history["sessionData"]["status"] == "escalated"
    again = (
        await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "still urgent"})
    ).json()
    # meanwhile the bot keeps helping (OFF_HOURS_BOT), without a second handoff
    assert again["needsEscalation"] is True and "escalation" not in again
    assert "get back to you" in again["response"]


async def test_out_of_scope_question_escalates_on_low_confidence(api):
    sid = await new_session(api)
    body = (
        await api.post(
            "/api/v1/chat/message",
            json={
                "sessionId": sid,
                "message": "What is the airspeed velocity of an unladen swallow?",
            },
        )
    ).json()
    assert body["confidence"] < 0.5
    assert body["needsEscalation"] is True
    assert [r["rule"] for r in body["escalation"]["reasons"]] == ["low_confidence"]


async def test_fifty_concurrent_sends_leave_exactly_a_hundred_entries(api):
    sid = await new_session(api)
    results = await asyncio.gather(
        *(
            api.post(
                "/api/v1/chat/message",
                json={"sessionId": sid, "message": f"where is my order {i}?"},
            )
            for i in range(50)
        )
    )
    assert all(r.status_code == 200 for r in results)
    history = (await api.get(f"/api/v1/chat/history/{sid}")).json()["history"]
    assert len(history) == 100
    assert sorted(e["content"] for e in history if e["role"] == "user") == sorted(
        f"where is my order {i}?" for i in range(50)
    )


# --- bad input ----------------------------------------------------------------------


async def test_unknown_session_is_404_everywhere(api):
    missing = "x" * 32
    assert_problem(
        await api.post("/api/v1/chat/message", json={"sessionId": missing, "message": "hi"}),
        404,
        "SESSION_NOT_FOUND",
    )
    assert_problem(await api.get(f"/api/v1/chat/history/{missing}"), 404, "SESSION_NOT_FOUND")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"userId": ""},
        {"userId": 42},
        {"userId": "u", "metadata": "not-an-object"},
        {"userId": "u", "unexpected": True},
        {"userId": "u" * 129},
    ],
)
async def test_bad_session_bodies_are_400(api, body):
    assert_problem(await api.post("/api/v1/chat/session", json=body), 400)


@pytest.mark.parametrize(
    "body",
    [
        {"message": "hi"},
        {"sessionId": "x" * 32},
        {"sessionId": "x" * 32, "message": ""},
        {"sessionId": "x" * 32, "message": 5},
        {"sessionId": "bad id with spaces!", "message": "hi"},
        {"sessionId": ["x"], "message": "hi"},
    ],
)
async def test_bad_message_bodies_are_400(api, body):
    assert_problem(await api.post("/api/v1/chat/message", json=body), 400)


async def test_blank_and_over_long_messages_are_400_and_change_nothing(api):
    sid = await new_session(api)
    assert_problem(
        await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": " \n\t "}), 400
    )
    too_long = "a" * 4001
    body = assert_problem(
        await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": too_long}), 400
    )
    assert "too long" in body["detail"] and len(body["detail"]) < 400
    spec = (await api.get("/api/v1/openapi.json")).json()
    assert spec["components"]["schemas"]["MessageText"]["maxLength"] == 4000
    assert (await api.get(f"/api/v1/chat/history/{sid}")).json()["history"] == []


async def test_malformed_json_wrong_content_type_and_bad_utf8_are_client_errors(api):
    assert_problem(
        await api.post(
            "/api/v1/chat/session",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        400,
    )
    assert_problem(
        await api.post(
            "/api/v1/chat/session",
            content=b"\xff\xfe{}",
            headers={"content-type": "application/json"},
        ),
        400,
    )
    res = await api.post(
        "/api/v1/chat/session",
        content=b"userId=u",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert res.status_code == 415
    assert res.json()["error"]


async def test_unknown_routes_and_methods_are_problems(api):
    assert_problem(await api.get("/api/v1/nope"), 404)
    assert_problem(await api.delete("/api/v1/chat/session"), 405)


async def test_the_spec_and_swagger_ui_are_served(api):
    spec = (await api.get("/api/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.0")
    assert {"/chat/session", "/chat/message", "/chat/history/{sessionId}", "/health"} <= set(
        spec["paths"]
    )
    assert (await api.get("/api/v1/ui/")).status_code == 200


async def test_responses_carry_a_request_id(api):
    res = await api.get("/api/v1/health", headers={"x-request-id": "abc-123"})
    assert res.headers["x-request-id"] == "abc-123"
    assert (await api.get("/api/v1/health")).headers["x-request-id"]


async def test_the_message_limit_is_configurable_and_the_spec_says_so(server_factory):
    srv = await server_factory(max_message_length=20)
    async with srv.client() as api:
        sid = await new_session(api)
        assert_problem(
            await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "x" * 21}),
            400,
        )
        assert (
            await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "x" * 20})
        ).status_code == 200
        spec = (await api.get("/api/v1/openapi.json")).json()
        assert spec["components"]["schemas"]["MessageText"]["maxLength"] == 20


async def test_oversized_bodies_are_refused_with_413(api):
    res = await api.post(
        "/api/v1/chat/session",
        content=b"{" + b" " * (2 << 20) + b"}",
        headers={"content-type": "application/json"},
    )
    assert_problem(res, 413, "PAYLOAD_TOO_LARGE")


async def test_topics_marked_escalate_hand_over_in_their_own_words(api):
    sid = await new_session(api)
    body = (
        await api.post(
            "/api/v1/chat/message",
            json={"sessionId": sid, "message": "I will take legal action against you"},
        )
    ).json()
    assert body["needsEscalation"] is True
    assert [r["rule"] for r in body["escalation"]["reasons"]] == ["requested"]
    assert body["response"].count("member of our team") <= 1 and "Legal matters" in body["response"]


async def test_an_unexpected_failure_is_a_plain_500_problem_without_internals():
    from handlers.problems import unexpected

    response = await unexpected(None, RuntimeError("secret internals /etc/passwd"))
    assert response.status_code == 500 and response.mimetype == "application/problem+json"
    assert "secret" not in response.body and '"error"' in response.body
