"""The agent side over REST against a real server and real Redis: sign-in, every lifecycle
step and every refused one, the atomic claim, replies, notes, CSAT and the bot stepping aside."""

from __future__ import annotations

import asyncio

import pytest

from tests.agents.conftest import ADMIN, bearer, desk_settings, login
from tests.conftest import HEALTH_DETAIL, new_session


async def test_sign_in_returns_a_token_that_expires_and_the_agent(desk):
    res = await desk.api.post("/api/v1/agents/login", json=ADMIN)
    body = res.json()
    assert res.status_code == 200 and body["agent"]["role"] == "admin"
    assert body["agent"]["email"] == ADMIN["email"] and body["expiresAt"].endswith("Z")
    me = await desk.api.get("/api/v1/agents/me", headers=bearer(body["token"]))
    assert me.json()["agent"]["id"] == body["agent"]["id"]


async def test_wrong_credentials_are_401_and_the_sixth_try_is_429_with_retry_after(desk):
    for _ in range(5):
        res = await desk.api.post(
            "/api/v1/agents/login", json={"email": ADMIN["email"], "password": "wrong-password"}
        )
        assert res.status_code == 401 and res.json()["code"] == "INVALID_CREDENTIALS"
    res = await desk.api.post("/api/v1/agents/login", json=ADMIN)  # even the right password
    assert res.status_code == 429 and int(res.headers["Retry-After"]) > 0
    assert res.headers["content-type"] == "application/problem+json"


async def test_every_agent_endpoint_wants_a_live_token(desk):
    sid = await desk.escalated_session()
    agent_id, token = await desk.add_agent("Bea")
    calls = [
        ("GET", "/api/v1/agents/queue"),
        ("GET", "/api/v1/agents/me"),
        ("GET", f"/api/v1/agents/conversations/{sid}"),
        ("POST", f"/api/v1/agents/conversations/{sid}/claim"),
        ("POST", "/api/v1/agents/logout"),
    ]
    for method, url in calls:
        for headers in ({}, bearer("not-a-token"), bearer(token + "x"), {"X-API-Key": "k"}):
            res = await desk.api.request(method, url, headers=headers)
            assert res.status_code == 401, (method, url, headers, res.text)
    # a revoked token (logout), then a disabled account
    assert (await desk.api.post("/api/v1/agents/logout", headers=bearer(token))).status_code == 200
    assert (await desk.api.get("/api/v1/agents/me", headers=bearer(token))).status_code == 401
    token = await login(desk.api, "bea@example.com", "agent-pass-1")
    res = await desk.api.post(f"/api/v1/agents/{agent_id}/disable", headers=bearer(desk.admin))
    assert res.status_code == 200 and res.json()["agent"]["disabled"] is True
    assert (await desk.api.get("/api/v1/agents/me", headers=bearer(token))).status_code == 401
    res = await desk.api.post(
        "/api/v1/agents/login", json={"email": "bea@example.com", "password": "agent-pass-1"}
    )
    assert res.status_code == 401


async def test_only_admins_manage_agents_and_an_admin_token_opens_the_knowledge_api(desk):
    agent_id, token = await desk.add_agent("Cal")
    for method, url, body in [
        ("GET", "/api/v1/agents", None),
        (
            "POST",
            "/api/v1/agents",
            {"email": "x@example.com", "name": "X", "password": "password1"},
        ),
        ("POST", f"/api/v1/agents/{agent_id}/disable", None),
        ("POST", f"/api/v1/agents/{agent_id}/password", {"password": "new-password"}),
        ("GET", "/api/v1/knowledge", None),
    ]:
        res = await desk.api.request(method, url, json=body, headers=bearer(token))
        assert res.status_code == 403, (url, res.text)
    assert (await desk.api.get("/api/v1/knowledge", headers=bearer(desk.admin))).status_code == 200
    listed = (await desk.api.get("/api/v1/agents", headers=bearer(desk.admin))).json()["agents"]
    assert {a["name"] for a in listed} == {"Administrator", "Cal"}
    res = await desk.api.post(
        f"/api/v1/agents/{agent_id}/password",
        json={"password": "another-pass"},
        headers=bearer(desk.admin),
    )
    assert res.status_code == 200
    assert (await desk.api.get("/api/v1/agents/me", headers=bearer(token))).status_code == 401
    await login(desk.api, "cal@example.com", "another-pass")
    dup = await desk.api.post(
        "/api/v1/agents",
        json={"email": "CAL@example.com", "name": "C", "password": "password1"},
        headers=bearer(desk.admin),
    )
    assert dup.status_code == 409


async def test_the_queue_lists_waiting_conversations_urgent_first_with_reasons(desk):
    calm = await desk.escalated_session("I want to make a complaint about my parcel")
    urgent = await desk.escalated_session("URGENT: my order never arrived")
    queue = (await desk.api.get("/api/v1/agents/queue", headers=bearer(desk.admin))).json()
    ids = [c["sessionId"] for c in queue["conversations"]]
    assert ids == [urgent, calm] and queue["counts"] == {"escalated": 2, "assigned": 0}
    first = queue["conversations"][0]
    assert first["priority"] == 1 and first["status"] == "escalated"
    assert first["assignedTo"] is None and first["waitingSince"].endswith("Z")
    assert {"rule": "keyword", "detail": "urgent"} in first["reasons"]
    assert first["lastMessage"]["role"] in ("assistant", "system")
    assert first["messageCount"] == 3  # customer, bot, the system entry of the handoff


async def test_of_twenty_agents_claiming_at_once_exactly_one_wins(desk):
    sid = await desk.escalated_session()
    tokens = [(await desk.add_agent(f"A{i}"))[1] for i in range(20)]
    results = await asyncio.gather(*(desk.act(t, sid, "claim") for t in tokens))
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [409] * 19
    winner = next(r for r in results if r.status_code == 200).json()["conversation"]["assignedTo"]
    for loser in (r for r in results if r.status_code == 409):
        problem = loser.json()
        assert problem["currentStatus"] == "assigned" and problem["holder"] == winner
        assert winner["name"] in problem["detail"]


async def test_the_whole_lifecycle_with_every_refused_step(desk):
    sid = await desk.escalated_session()
    _, alice = await desk.add_agent("Alice")
    _, bob = await desk.add_agent("Bob")
    # not yet claimed: nothing to reply to, hand back or transfer
    for step, body in (("messages", {"message": "hi"}), ("handback", None), ("transfer", {})):
        res = await desk.act(alice, sid, step, body)
        assert res.status_code == 409 and res.json()["currentStatus"] == "escalated", step
    assert (await desk.act(alice, sid, "claim")).status_code == 200
    # only the holder (or an admin) acts on a held conversation
    for step, body in (("messages", {"message": "hi"}), ("handback", None), ("resolve", {})):
        assert (await desk.act(bob, sid, step, body)).status_code == 403, step
    reply = await desk.act(alice, sid, "messages", {"message": "Hello, I'm Alice. Let me check."})
    entry = reply.json()["message"]
    assert entry["role"] == "agent" and entry["agentName"] == "Alice"
    admin_reply = await desk.act(desk.admin, sid, "messages", {"message": "(admin) noted"})
    assert admin_reply.status_code == 200
    # transfer to Bob, then Bob releases to the queue, then Alice claims again
    bob_id = (await desk.api.get("/api/v1/agents/me", headers=bearer(bob))).json()["agent"]["id"]
    moved = await desk.act(alice, sid, "transfer", {"agentId": bob_id})
    assert moved.json()["conversation"]["assignedTo"]["name"] == "Bob"
    assert (await desk.act(alice, sid, "messages", {"message": "still me?"})).status_code == 403
    released = await desk.act(bob, sid, "transfer", {})
    assert released.json()["conversation"]["status"] == "escalated"
    assert (await desk.act(alice, sid, "claim")).status_code == 200
    # hand back: the bot answers again; a resolved conversation cannot be handed back
    back = await desk.act(alice, sid, "handback")
    assert back.json()["conversation"]["status"] == "active"
    assert back.json()["conversation"]["episode"] == 2
    answer = await desk.say(sid, "How long does shipping take?")
    assert answer["provider"] == "local" and answer["status"] == "active"
    assert not answer["needsEscalation"]
    refused = await desk.act(alice, sid, "claim")
    assert refused.status_code == 409 and refused.json()["currentStatus"] == "active"
    # escalate again in the new episode, then resolve with a note
    again = await desk.say(sid, "This is urgent, I need a refund")
    assert again["needsEscalation"] and again["status"] == "escalated"
    assert (await desk.act(bob, sid, "claim")).status_code == 200
    done = await desk.act(bob, sid, "resolve", {"note": "refund issued"})
    assert done.json()["conversation"]["status"] == "resolved"
    assert (await desk.act(bob, sid, "handback")).status_code == 409
    events = [
        e["event"]
        for e in (await desk.api.get(f"/api/v1/chat/history/{sid}")).json()["history"]
        if e["role"] == "system"
    ]
    assert events == [
        "escalated",
        "assigned",
        "transferred",
        "released",
        "assigned",
        "handed_back",
        "escalated",
        "assigned",
        "resolved",
    ]


async def test_agent_replies_reach_the_history_and_notes_never_do(desk):
    sid = await desk.escalated_session()
    assert (await desk.act(desk.admin, sid, "claim")).status_code == 200
    await desk.act(desk.admin, sid, "notes", {"note": "customer sounds upset; VIP"})
    await desk.act(desk.admin, sid, "messages", {"message": "I'm on it."})
    history = (await desk.api.get(f"/api/v1/chat/history/{sid}")).json()["history"]
    assert [e["role"] for e in history if e["role"] in ("agent", "note")] == ["agent"]
    assert "VIP" not in str(history)
    full = await desk.api.get(f"/api/v1/agents/conversations/{sid}", headers=bearer(desk.admin))
    notes = [e for e in full.json()["transcript"] if e["role"] == "note"]
    assert notes[0]["content"] == "customer sounds upset; VIP" and notes[0]["agentName"]


async def test_while_a_person_is_needed_the_customer_gets_a_holding_reply_not_a_bot_answer(desk):
    sid = await desk.escalated_session()
    first = await desk.say(sid, "hello? anyone?")
    assert first["needsEscalation"] and first["status"] == "escalated"
    assert first["provider"] == "none" and first["confidence"] == 0
    assert first["handledBy"] is None and first["queuePosition"] == 1
    assert "queue" in first["response"]  # one notice...
    second = await desk.say(sid, "still there?")
    assert second["response"] == ""  # ...not one per message
    await desk.act(desk.admin, sid, "claim")
    held = await desk.say(sid, "thanks")
    assert held["status"] == "assigned" and held["handledBy"]["name"] == "Administrator"
    assert held["response"] == "" and "queuePosition" not in held


@pytest.mark.parametrize("rating", [0, 6, "5"])
async def test_a_rating_outside_one_to_five_is_a_400(desk, rating):
    sid = await new_session(desk.api)
    res = await desk.api.post(f"/api/v1/chat/session/{sid}/rating", json={"rating": rating})
    assert res.status_code == 400


async def test_csat_once_per_resolved_episode_shown_to_agents_and_counted(desk):
    sid = await desk.escalated_session()
    url = f"/api/v1/chat/session/{sid}/rating"
    assert (await desk.api.post(url, json={"rating": 5})).status_code == 409  # nothing resolved
    assert (await desk.act(desk.admin, sid, "claim")).status_code == 200
    resolved = await desk.act(desk.admin, sid, "resolve")
    assert resolved.status_code == 200, resolved.text
    res = await desk.api.post(url, json={"rating": 4, "comment": "quick and kind"})
    assert res.status_code == 200 and res.json()["episode"] == 1
    assert (await desk.api.post(url, json={"rating": 1})).status_code == 409  # once
    full = await desk.api.get(f"/api/v1/agents/conversations/{sid}", headers=bearer(desk.admin))
    assert full.json()["conversation"]["csat"][0]["rating"] == 4
    assert full.json()["conversation"]["csat"][0]["comment"] == "quick and kind"
    health = (await desk.api.get("/api/v1/health", headers=HEALTH_DETAIL)).json()
    assert health["counters"]["csat"] == {"ratings": 1, "byRating": {"4": 1}, "average": 4.0}
    # the customer returns: a new episode with the bot, which can escalate and be rated again
    back = await desk.say(sid, "How long does shipping take?")
    assert back["status"] == "active" and back["provider"] == "local"


async def test_a_bot_answer_can_be_rated_once_per_episode_but_not_before_it(desk):
    sid = await new_session(desk.api)
    url = f"/api/v1/chat/session/{sid}/rating"
    res = await desk.api.post(url, json={"rating": 5})
    assert res.status_code == 409 and res.json()["code"] == "NOTHING_TO_RATE"  # no answer yet
    answered = await desk.say(sid, "How long does shipping take?")
    assert answered["status"] == "active" and answered["provider"] == "local"
    res = await desk.api.post(url, json={"rating": 5, "comment": "spot on"})
    assert res.status_code == 200, res.text
    assert res.json()["episode"] == 1 and res.json()["rating"] == 5
    again = await desk.api.post(url, json={"rating": 2})
    assert again.status_code == 409 and again.json()["code"] == "NOTHING_TO_RATE"
    full = await desk.api.get(f"/api/v1/agents/conversations/{sid}", headers=bearer(desk.admin))
    assert [r["rating"] for r in full.json()["conversation"]["csat"]] == [5]


async def test_a_waiting_conversation_outlives_the_idle_timeout(server_factory):
    srv = await server_factory(**desk_settings(session_timeout=600))
    async with srv.client() as api:
        token = await login(api, ADMIN["email"], ADMIN["password"])
        kept = await new_session(api)
        await api.post("/api/v1/chat/message", json={"sessionId": kept, "message": "urgent help"})
        idle = await new_session(api)
        await asyncio.sleep(1.0)
        assert (await api.get(f"/api/v1/chat/history/{idle}")).status_code == 404
        assert (await api.get(f"/api/v1/chat/history/{kept}")).status_code == 200
        claim = await api.post(f"/api/v1/agents/conversations/{kept}/claim", headers=bearer(token))
        assert claim.status_code == 200
        await asyncio.sleep(1.0)
        assert (await api.get(f"/api/v1/chat/history/{kept}")).status_code == 200
        await api.post(f"/api/v1/agents/conversations/{kept}/resolve", headers=bearer(token))
        await asyncio.sleep(1.0)  # resolved: back to the normal expiry
        assert (await api.get(f"/api/v1/chat/history/{kept}")).status_code == 404


async def test_no_model_request_while_escalated_or_assigned(server_factory, openai_fake):
    srv = await server_factory(
        **desk_settings(openai_api_key="sk-test", openai_base_url=openai_fake.openai_url)
    )
    async with srv.client() as api:
        token = await login(api, ADMIN["email"], ADMIN["password"])
        sid = await new_session(api)
        await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "urgent!"})
        before = len(openai_fake.fake.requests)
        assert before == 1
        for text in ("hello?", "where is everyone", "please"):
            await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": text})
        await api.post(f"/api/v1/agents/conversations/{sid}/claim", headers=bearer(token))
        for text in ("thanks", "my order is 12345"):
            await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": text})
        await api.post(
            f"/api/v1/agents/conversations/{sid}/notes",
            json={"note": "secret internal note"},
            headers=bearer(token),
        )
        assert len(openai_fake.fake.requests) == before  # not one model request
        await api.post(f"/api/v1/agents/conversations/{sid}/handback", headers=bearer(token))
        res = await api.post(
            "/api/v1/chat/message", json={"sessionId": sid, "message": "How long is shipping?"}
        )
        assert res.json()["provider"] == "openai"
        sent = openai_fake.fake.requests[-1]["body"]["messages"]
        assert "secret internal note" not in str(sent)
        assert "urgent!" not in str(sent)  # the bot's context starts after the human part
