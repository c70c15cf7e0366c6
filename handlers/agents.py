"""The agent side over REST: sign-in, accounts (admin), the queue and the lifecycle."""

from __future__ import annotations

from typing import Any

from handlers import container, ok
from handlers.auth import current_agent, current_token
from handlers.limits import request_address
from services.sessions import iso


def _agents() -> Any:
    return container().agents


def _conversations() -> Any:
    return container().conversations


async def _agent_view(agent: Any) -> dict[str, Any]:
    online = {a["id"]: a["presence"] for a in await _agents().online()}
    routing = await container().router.settings_of(agent.id)
    return {
        **agent.public(),
        "online": agent.id in online,
        "presence": online.get(agent.id, "offline"),
        "routing": routing.public(),
    }


async def login(body: dict[str, Any]):
    token, expires_at, agent = await _agents().login(
        body["email"], body["password"], request_address()
    )
    return ok({"token": token, "expiresAt": iso(expires_at), "agent": agent.public()})


async def logout():
    await _agents().logout(current_token())
    return ok({"success": True})


async def me():
    return ok({"agent": await _agent_view(current_agent())})


async def list_agents():
    return ok({"agents": [await _agent_view(a) for a in await _agents().list()]})


async def create_agent(body: dict[str, Any]):
    agent = await _agents().create(
        body["email"], body["name"], body["password"], body.get("role", "agent")
    )
    return ok({"agent": await _agent_view(agent)}, 201)


async def disable_agent(agentId: str):
    return ok({"agent": await _agent_view(await _agents().set_disabled(agentId, True))})


async def enable_agent(agentId: str):
    return ok({"agent": await _agent_view(await _agents().set_disabled(agentId, False))})


async def reset_password(agentId: str, body: dict[str, Any]):
    return ok(
        {"agent": await _agent_view(await _agents().reset_password(agentId, body["password"]))}
    )


async def get_queue(status: str | None = None, mine: bool = False):
    items, counts = await _conversations().queue(
        status=status, mine=current_agent() if mine else None
    )
    online = await _agents().online_count()
    return ok({"conversations": items, "counts": counts, "agentsOnline": online})


async def get_conversation(sessionId: str):
    item, transcript = await _conversations().conversation(sessionId)
    summary = await container().summaries.current(sessionId)  # the handoff summary, if any
    return ok({"conversation": item, "transcript": transcript, "summary": summary})


async def claim(sessionId: str):
    return ok({"conversation": await _conversations().claim(sessionId, current_agent())})


async def reply(sessionId: str, body: dict[str, Any]):
    entry = await _conversations().reply(
        sessionId, current_agent(), body["message"], body.get("suggestion")
    )
    return ok({"message": entry})


async def add_note(sessionId: str, body: dict[str, Any]):
    return ok({"note": await _conversations().note(sessionId, current_agent(), body["note"])})


async def transfer(sessionId: str, body: dict[str, Any] | None = None):
    to_agent = (body or {}).get("agentId")
    return ok(
        {"conversation": await _conversations().transfer(sessionId, current_agent(), to_agent)}
    )


async def handback(sessionId: str):
    return ok({"conversation": await _conversations().handback(sessionId, current_agent())})


async def resolve(sessionId: str, body: dict[str, Any] | None = None):
    note = (body or {}).get("note")
    return ok({"conversation": await _conversations().resolve(sessionId, current_agent(), note)})


async def set_routing(agentId: str, body: dict[str, Any]):
    agent = await _agents().get(agentId)
    await container().router.configure(agentId, body.get("capacity"), body.get("teams"))
    return ok({"agent": await _agent_view(agent)})


async def decline(sessionId: str):
    await container().router.decline(sessionId, current_agent().id)
    return ok({"conversation": await _conversations().item(sessionId)})
