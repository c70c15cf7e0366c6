"""The agent side live: the `/agents` namespace and the customer's page events, with real
Socket.IO clients against real servers (one, and two sharing Redis)."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from tests.agents.conftest import ADMIN, bearer, desk_settings, login


async def test_the_agents_namespace_refuses_a_missing_bad_or_revoked_token(desk):
    _, token = await desk.add_agent("Dee")
    await desk.api.post("/api/v1/agents/logout", headers=bearer(token))
    for auth in (None, {}, {"token": ""}, {"token": "forged.token"}, {"token": token}):
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(
                desk.server.url,
                namespaces=["/agents"],
                auth=auth,
                transports=["websocket"],
                wait_timeout=5,
            )
        await client.disconnect()


async def test_a_whole_conversation_live_between_the_page_and_the_console(desk, consoles):
    agent, customer = consoles
    console = await agent(desk.server.url, desk.admin)
    hello = await console.wait_for("hello")
    assert hello["agent"]["role"] == "admin" and hello["agentsOnline"] == 1
    page = await customer(desk.server.url)
    await page.emit("join-chat", {"userId": "u1"})
    sid = (await page.wait_for("chat-joined"))["sessionId"]

    await page.emit(
        "send-message", {"sessionId": sid, "message": "urgent: my card was charged twice"}
    )
    alert = await console.wait_for("escalation-needed")
    assert alert["sessionId"] == sid
    added = await console.wait_for("queue-updated", lambda d: d["action"] == "added")
    assert added["item"]["sessionId"] == sid and added["item"]["priority"] == 1
    waiting = await page.wait_for("conversation-updated", lambda d: d["status"] == "escalated")
    assert waiting["queuePosition"] == 1

    await desk.act(desk.admin, sid, "claim")
    joined = await page.wait_for("agent-joined")
    assert joined == {"sessionId": sid, "agentName": "Administrator"}
    update = await console.wait_for("conversation-updated", lambda d: d["event"] == "assigned")
    assert update["assignedTo"]["name"] == "Administrator" and update["previous"] == "escalated"

    # customer -> agent, with typing both ways
    await page.emit("typing", {"sessionId": sid, "isTyping": True})
    typing = await console.wait_for("typing")
    assert typing == {"sessionId": sid, "isTyping": True, "sender": "customer"}
    await page.emit("send-message", {"sessionId": sid, "message": "order 1234"})
    got = await console.wait_for("message-received", lambda d: d["message"] == "order 1234")
    assert got["sender"] == "customer" and got["isBot"] is False
    await console.emit("typing", {"sessionId": sid, "isTyping": True})
    agent_typing = await page.wait_for("typing", lambda d: d.get("sender") == "agent")
    assert agent_typing["agentName"] == "Administrator"

    # agent -> customer
    await desk.act(desk.admin, sid, "messages", {"message": "Refunding the double charge now."})
    reply = await page.wait_for("message-received", lambda d: d.get("sender") == "agent")
    assert reply["isBot"] is False and reply["agentName"] == "Administrator"
    assert reply["message"] == "Refunding the double charge now."

    # hand back: the bot answers again
    await desk.act(desk.admin, sid, "handback")
    back = await page.wait_for("conversation-updated", lambda d: d["event"] == "handed_back")
    assert back["status"] == "active"
    await page.emit("send-message", {"sessionId": sid, "message": "How long does shipping take?"})
    bot = await page.wait_for("message-received", lambda d: d.get("sender") == "bot")
    assert bot["isBot"] is True and bot["provider"] == "local"
    # an admin sees the bot's part live too
    watched = await console.wait_for("message-received", lambda d: d.get("sender") == "bot")
    assert watched["messageId"] == bot["messageId"]

    # escalate again, resolve, rate
    await page.emit("send-message", {"sessionId": sid, "message": "this is an emergency"})
    await console.wait_for(
        "queue-updated", lambda d: d["action"] == "added" and d["item"]["episode"] == 2
    )
    await desk.act(desk.admin, sid, "claim")
    await desk.act(desk.admin, sid, "resolve", {"note": "refunded"})
    ask = await page.wait_for("csat-request")
    assert ask == {"sessionId": sid, "episode": 2}
    removed = await console.wait_for(
        "queue-updated", lambda d: d["action"] == "removed" and d["item"]["status"] == "resolved"
    )
    assert removed["item"]["sessionId"] == sid
    await page.emit("rate", {"sessionId": sid, "rating": 5, "comment": "great"})
    rated = await page.wait_for("rated")
    assert rated["rating"] == 5 and rated["episode"] == 2
    seen = await console.wait_for("conversation-updated", lambda d: d["event"] == "rated")
    assert seen["csat"]["rating"] == 5 and seen["csat"]["comment"] == "great"


async def test_a_customer_socket_cannot_use_agent_events_or_see_other_sessions(desk, consoles):
    _, customer = consoles
    mallory = await customer(desk.server.url)
    await mallory.emit("join-chat", {"userId": "mallory"})
    await mallory.wait_for("chat-joined")
    victim = await desk.escalated_session()
    await desk.act(desk.admin, victim, "claim")
    for event, data in (
        ("claim", {"sessionId": victim}),
        ("set-presence", {"presence": "online"}),
        ("watch", {"sessionId": victim}),
        ("typing", {"sessionId": victim, "isTyping": "yes"}),
        ("rate", {"sessionId": victim, "rating": 9}),
    ):
        await mallory.emit(event, data)
    errors = await mallory.wait_for("error", lambda _: len(mallory.received["error"]) >= 5)
    assert errors is not None
    assert {e["code"] for e in mallory.received["error"]} == {"UNKNOWN_EVENT", "INVALID_PAYLOAD"}
    await desk.act(desk.admin, victim, "messages", {"message": "private reply"})
    await desk.say(victim, "my secret")
    await asyncio.sleep(0.3)
    assert "private reply" not in str(mallory.received) and "my secret" not in str(mallory.received)
    assert not mallory.received["agent-joined"]


async def test_rejoining_with_the_session_id_alone_works(desk, consoles):
    _, customer = consoles
    page = await customer(desk.server.url)
    await page.emit("join-chat", {"userId": "u7"})
    sid = (await page.wait_for("chat-joined"))["sessionId"]
    again = await customer(desk.server.url)
    await again.emit("join-chat", {"sessionId": sid})
    joined = await again.wait_for("chat-joined")
    assert joined["sessionId"] == sid and joined["userId"] == "u7"
    await again.emit("join-chat", {})
    assert (await again.wait_for("error"))["code"] == "INVALID_PAYLOAD"


async def test_presence_is_shared_and_a_revoked_console_is_signed_out(server_factory, consoles):
    agent, _ = consoles
    srv = await server_factory(**desk_settings(presence_ttl=5))
    async with srv.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        assert (await api.get("/api/v1/health")).json()["services"]["agentsOnline"] == 0
        console = await agent(srv.url, admin)
        await console.wait_for("hello")
        assert (await api.get("/api/v1/health")).json()["services"]["agentsOnline"] == 1
        await console.emit("set-presence", {"presence": "away"})
        update = await console.wait_for(
            "presence-updated", lambda d: d["agents"] and d["agents"][0]["presence"] == "away"
        )
        assert update["agents"][0]["name"] == "Administrator"
        queue = (await api.get("/api/v1/agents/queue", headers=bearer(admin))).json()
        assert queue["agentsOnline"] == 1
        await api.post("/api/v1/agents/logout", headers=bearer(admin))
        await console.wait_for("signed-out", timeout=10)
        for _ in range(50):
            if not console.sio.connected:
                break
            await asyncio.sleep(0.1)
        assert not console.sio.connected
        assert (await api.get("/api/v1/health")).json()["services"]["agentsOnline"] == 0


async def test_two_instances_customer_on_one_agent_on_the_other(server_factory, consoles):
    agent, customer = consoles
    settings = desk_settings()
    one = await server_factory(**settings)
    two = await server_factory(**settings, redis_key_prefix=one.settings.redis_key_prefix)
    async with one.client() as api_one, two.client() as api_two:
        token = await login(api_two, ADMIN["email"], ADMIN["password"])
        console = await agent(two.url, token)
        await console.wait_for("hello")
        page = await customer(one.url)
        await page.emit("join-chat", {"userId": "cross"})
        sid = (await page.wait_for("chat-joined"))["sessionId"]
        await page.emit("send-message", {"sessionId": sid, "message": "urgent, need a person"})
        await console.wait_for("queue-updated", lambda d: d["item"]["sessionId"] == sid)
        claimed = await api_two.post(
            f"/api/v1/agents/conversations/{sid}/claim", headers=bearer(token)
        )
        assert claimed.status_code == 200
        await page.wait_for("agent-joined")
        await page.emit("send-message", {"sessionId": sid, "message": "hi from instance one"})
        got = await console.wait_for(
            "message-received", lambda d: d["message"] == "hi from instance one"
        )
        assert got["sessionId"] == sid and got["sender"] == "customer"
        await api_two.post(
            f"/api/v1/agents/conversations/{sid}/messages",
            json={"message": "hi from two"},
            headers=bearer(token),
        )
        reply = await page.wait_for("message-received", lambda d: d.get("sender") == "agent")
        assert reply["message"] == "hi from two"
        await api_two.post(f"/api/v1/agents/conversations/{sid}/resolve", headers=bearer(token))
        await page.wait_for("csat-request")
        rated = await api_one.post(f"/api/v1/chat/session/{sid}/rating", json={"rating": 3})
        assert rated.status_code == 200
        seen = await console.wait_for("conversation-updated", lambda d: d["event"] == "rated")
        assert seen["csat"]["rating"] == 3
