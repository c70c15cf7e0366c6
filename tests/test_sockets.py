"""Socket.IO with a real AsyncClient against the real server: events, rooms, bad input."""

import asyncio
from collections import defaultdict
from typing import Any

import pytest
import socketio

from tests.conftest import new_session

EVENTS = (
    "chat-joined",
    "message-received",
    "message-chunk",
    "message-reset",
    "typing",
    "escalation-needed",
    "agents-joined",
    "error",
)


class Client:
    """A Socket.IO client that records what it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._new = asyncio.Event()
        for name in EVENTS:
            self.sio.on(name, self._recorder(name))

    def _recorder(self, name):
        async def record(data=None):
            self.received[name].append(data)
            self._new.set()

        return record

    async def connect(self, url: str) -> "Client":
        await self.sio.connect(url, transports=["websocket"], wait_timeout=10)
        return self

    async def wait_for(self, name: str, count: int = 1, timeout: float = 10) -> list[Any]:
        async def until():
            while len(self.received[name]) < count:
                self._new.clear()
                await self._new.wait()

        await asyncio.wait_for(until(), timeout)
        return self.received[name]

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data)

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest.fixture
async def connect(server):
    clients: list[Client] = []

    async def make() -> Client:
        client = await Client().connect(server.url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def join(client: Client, **data) -> dict:
    await client.emit("join-chat", {"userId": "user123", **data})
    return (await client.wait_for("chat-joined"))[-1]


async def test_join_chat_without_a_session_creates_one(connect, api):
    client = await connect()
    joined = await join(client)
    assert joined["sessionId"] and joined["userId"] == "user123" and joined["history"] == []
    assert (await api.get(f"/api/v1/chat/history/{joined['sessionId']}")).status_code == 200


async def test_send_message_gets_typing_then_the_reply(connect):
    client = await connect()
    joined = await join(client)
    await client.emit(
        "send-message",
        {
            "sessionId": joined["sessionId"],
            "message": "How long does shipping take?",
            "userId": "user123",
        },
    )
    reply = (await client.wait_for("message-received"))[-1]
    assert reply["isBot"] is True and reply["provider"] == "local"
    assert reply["message"] and reply["needsEscalation"] is False and 0 <= reply["confidence"] <= 1
    assert reply["messageId"] and reply["timestamp"] and isinstance(reply["sources"], list)
    typing = client.received["typing"]
    assert [t["isTyping"] for t in typing] == [True, False]


async def test_joining_an_existing_session_returns_the_transcript(connect, api):
    sid = await new_session(api)
    await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "hello"})
    client = await connect()
    joined = await join(client, sessionId=sid)
    assert [e["role"] for e in joined["history"]] == ["user", "assistant"]


async def test_a_message_sent_over_rest_is_pushed_to_the_sessions_sockets(connect, api):
    client = await connect()
    sid = (await join(client))["sessionId"]
    await api.post(
        "/api/v1/chat/message", json={"sessionId": sid, "message": "Do you ship abroad?"}
    )
    received = await client.wait_for("message-received", 2)
    assert [r["isBot"] for r in received] == [False, True]
    assert received[0]["message"] == "Do you ship abroad?"


async def test_escalation_goes_to_the_session_and_agents_only(connect, server):
    customer, bystander, agent = await connect(), await connect(), await connect()
    sid = (await join(customer))["sessionId"]
    await join(bystander)
    await agent.emit("join-agents", {"apiKey": "wrong"})
    assert (await agent.wait_for("error"))[-1]["code"] == "UNAUTHORIZED"
    await customer.emit(
        "send-message",
        {
            "sessionId": sid,
            "message": "I want to speak to a manager, this is urgent",
            "userId": "user123",
        },
    )
    note = (await customer.wait_for("escalation-needed"))[-1]
    assert note["sessionId"] == sid and note["userId"] == "user123" and note["timestamp"]
    assert note["message"] == "I want to speak to a manager, this is urgent"
    reply = (await customer.wait_for("message-received"))[-1]
    assert reply["needsEscalation"] is True
    await asyncio.sleep(0.2)
    assert bystander.received["escalation-needed"] == []
    assert agent.received["escalation-needed"] == []  # not an agent without the key


async def test_agents_with_the_key_receive_escalations(server_factory):
    srv = await server_factory(admin_api_key="agent-secret")
    agent, customer = Client(), Client()
    await agent.connect(srv.url)
    await customer.connect(srv.url)
    try:
        await agent.emit("join-agents", {"apiKey": "agent-secret"})
        await agent.wait_for("agents-joined")
        sid = (await join(customer))["sessionId"]
        await customer.emit("send-message", {"sessionId": sid, "message": "I have a complaint"})
        note = (await agent.wait_for("escalation-needed"))[-1]
        assert note["sessionId"] == sid and note["reasons"][0]["detail"] == "complaint"
    finally:
        await agent.close()
        await customer.close()


@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [
        ("join-chat", None, "INVALID_PAYLOAD"),
        ("join-chat", "just a string", "INVALID_PAYLOAD"),
        ("join-chat", {"userId": 5}, "INVALID_PAYLOAD"),
        ("join-chat", {"userId": "u", "sessionId": "../../etc"}, "INVALID_PAYLOAD"),
        ("join-chat", {"userId": "u", "sessionId": "x" * 32}, "SESSION_NOT_FOUND"),
        ("send-message", {"message": "hi"}, "INVALID_PAYLOAD"),
        ("send-message", {"sessionId": "x" * 32, "message": "hi"}, "SESSION_NOT_FOUND"),
        ("send-message", {"sessionId": "x" * 32, "message": ""}, "INVALID_PAYLOAD"),
        ("send-message", [1, 2, 3], "INVALID_PAYLOAD"),
        ("join-agents", {}, "INVALID_PAYLOAD"),
        ("no-such-event", {"a": 1}, "UNKNOWN_EVENT"),
    ],
)
async def test_bad_input_gets_an_error_event_and_the_connection_stays_up(
    connect, event, payload, code
):
    client = await connect()
    await client.emit(event, payload)
    error = (await client.wait_for("error"))[-1]
    assert error["code"] == code and error["message"]
    assert client.sio.connected
    joined = await join(client)  # still usable
    assert joined["sessionId"]


async def test_blank_and_over_long_socket_messages_are_refused(connect):
    client = await connect()
    sid = (await join(client))["sessionId"]
    await client.emit("send-message", {"sessionId": sid, "message": "   "})
    await client.emit("send-message", {"sessionId": sid, "message": "a" * 4001})
    errors = await client.wait_for("error", 2)
    assert [e["code"] for e in errors] == ["INVALID_PAYLOAD", "INVALID_PAYLOAD"]
    assert client.received["message-received"] == []


async def test_events_reach_sockets_on_another_instance_through_redis(server_factory):
    first = await server_factory()
    second = await server_factory(redis_key_prefix=first.settings.redis_key_prefix)
    client = await Client().connect(first.url)
    try:
        sid = (await join(client))["sessionId"]
        async with second.client() as api:  # the REST call lands on the other instance
            res = await api.post(
                "/api/v1/chat/message",
                json={"sessionId": sid, "message": "How long does shipping take?"},
            )
            assert res.status_code == 200
        received = await client.wait_for("message-received", 2)
        assert [r["isBot"] for r in received] == [False, True]
        assert received[1]["messageId"] == res.json()["messageId"]
    finally:
        await client.close()
