"""Fixtures for the agent side: a server with a first admin, signed-in agents over REST,
and agent consoles as real Socket.IO clients on the `/agents` namespace."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import socketio

from tests.conftest import RunningServer, new_session
from tests.responders.conftest import _openai_server, openai_fake  # noqa: F401 - fixtures

ADMIN = {"email": "admin@example.com", "password": "admin-pass-123"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(api: httpx.AsyncClient, email: str, password: str) -> str:
    res = await api.post("/api/v1/agents/login", json={"email": email, "password": password})
    assert res.status_code == 200, res.text
    return str(res.json()["token"])


@dataclass
class Desk:
    """A running server, an HTTP client and the admin's token."""

    server: RunningServer
    api: httpx.AsyncClient
    admin: str

    async def add_agent(self, name: str, role: str = "agent") -> tuple[str, str]:
        """A new agent's (id, token)."""
        email = f"{name.lower()}@example.com"
        res = await self.api.post(
            "/api/v1/agents",
            json={"email": email, "name": name, "password": "agent-pass-1", "role": role},
            headers=bearer(self.admin),
        )
        assert res.status_code == 201, res.text
        return res.json()["agent"]["id"], await login(self.api, email, "agent-pass-1")

    async def escalated_session(self, message: str = "This is urgent, my order is lost") -> str:
        sid = await new_session(self.api)
        res = await self.api.post(
            "/api/v1/chat/message", json={"sessionId": sid, "message": message}
        )
        assert res.json()["needsEscalation"] is True, res.text
        return sid

    async def act(self, token: str, sid: str, step: str, body: Any = None) -> httpx.Response:
        url = f"/api/v1/agents/conversations/{sid}/{step}"
        return await self.api.post(url, json=body, headers=bearer(token))

    async def say(self, sid: str, message: str) -> dict[str, Any]:
        res = await self.api.post(
            "/api/v1/chat/message", json={"sessionId": sid, "message": message}
        )
        assert res.status_code == 200, res.text
        return dict(res.json())


def desk_settings(**overrides: Any) -> dict[str, Any]:
    """A first admin; and the bot stays out of a waiting conversation even when no agent is
    online (OFF_HOURS_BOT off), so these tests see the pure lifecycle."""
    return {
        "admin_email": ADMIN["email"],
        "admin_password": ADMIN["password"],
        "off_hours_bot": False,
        **overrides,
    }


@pytest.fixture
async def desk(server_factory: Any) -> AsyncIterator[Desk]:
    srv = await server_factory(**desk_settings())
    async with srv.client() as api:
        yield Desk(srv, api, await login(api, ADMIN["email"], ADMIN["password"]))


AGENT_EVENTS = (
    "hello",
    "escalation-needed",
    "queue-updated",
    "conversation-updated",
    "message-received",
    "note-added",
    "ticket-created",
    "queue-reminder",
    "offer",
    "offer-withdrawn",
    "typing",
    "presence-updated",
    "signed-out",
    "error",
)
CUSTOMER_EVENTS = (
    "chat-joined",
    "message-received",
    "typing",
    "escalation-needed",
    "agent-joined",
    "conversation-updated",
    "csat-request",
    "contact-requested",
    "contact-saved",
    "rated",
    "error",
)


class Recorder:
    """A real Socket.IO client on one namespace that records what it receives."""

    def __init__(self, namespace: str, events: tuple[str, ...]) -> None:
        self.namespace = namespace
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._new = asyncio.Event()
        for name in events:
            self.sio.on(name, self._recorder(name), namespace=namespace)

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None) -> None:
            self.received[name].append(data)
            self._new.set()

        return record

    async def connect(self, url: str, auth: Any = None) -> Recorder:
        await self.sio.connect(
            url, namespaces=[self.namespace], auth=auth, transports=["websocket"], wait_timeout=10
        )
        return self

    async def wait_for(self, name: str, where: Any = None, timeout: float = 10) -> Any:
        """The first `name` event (matching `where`), waiting for it if needed."""

        def found() -> Any:
            return next((d for d in self.received[name] if where is None or where(d)), None)

        async def until() -> Any:
            while (hit := found()) is None:
                self._new.clear()
                await self._new.wait()
            return hit

        return await asyncio.wait_for(until(), timeout)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data, namespace=self.namespace)

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest.fixture
async def consoles() -> AsyncIterator[Any]:
    """Open agent consoles (`/agents`) and customer pages (`/`); all closed afterwards."""
    opened: list[Recorder] = []

    async def agent(url: str, token: str) -> Recorder:
        rec = await Recorder("/agents", AGENT_EVENTS).connect(url, {"token": token})
        opened.append(rec)
        return rec

    async def customer(url: str) -> Recorder:
        rec = await Recorder("/", CUSTOMER_EVENTS).connect(url)
        opened.append(rec)
        return rec

    yield agent, customer
    for rec in opened:
        await rec.close()
