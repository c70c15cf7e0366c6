"""The agents' namespace, `/agents`: a signed-in console's live connection.

Connect with `auth: {token}` (from POST /api/v1/agents/login); without a valid token the
connection is refused. Rooms: every agent, the agent's own, admins, and one per
conversation an agent watches.

Client -> server: typing {sessionId, isTyping}, set-presence {presence},
watch {sessionId}, unwatch {sessionId}, suggest {sessionId}.
Server -> client: hello, escalation-needed, queue-updated, conversation-updated,
message-received, note-added, typing, presence-updated, signed-out, suggestions, error.

Presence: each instance refreshes its own agent sockets in Redis every PRESENCE_TTL/3
seconds and re-checks their tokens, so a revoked, expired or disabled sign-in is
disconnected within that time and a dead instance's agents drop out after PRESENCE_TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from services.errors import DomainError
from sockets.base import EventNamespace
from sockets.rooms import ADMINS, AGENTS, AGENTS_NAMESPACE, agent_room, watch_room
from sockets.validation import EventSchemas

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Live:
    agent: Any
    token: str


class AgentNamespace(EventNamespace):
    prefix = "agent:"
    event_limit = "agents"

    def __init__(self, container: Any, schemas: EventSchemas) -> None:
        super().__init__(AGENTS_NAMESPACE, container, schemas)
        self.live: dict[str, Live] = {}  # this instance's agent sockets
        self._online: list[dict[str, Any]] = []
        self._loop: asyncio.Task[None] | None = None

    @property
    def agents(self) -> Any:
        return self.container.agents

    # -- connection ------------------------------------------------------------------
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise ConnectionRefusedError("sign in first: auth.token is required")
        try:
            agent = await self.agents.authenticate(token)
        except DomainError as exc:
            raise ConnectionRefusedError(exc.detail) from None
        self.live[sid] = Live(agent, token)
        await self.enter_room(sid, AGENTS)
        await self.enter_room(sid, agent_room(agent.id))
        if agent.is_admin:
            await self.enter_room(sid, ADMINS)
        await self.agents.connected(agent.id, sid)
        self._ensure_loop()
        # After the handler returns the connection is acknowledged; greet right after that.
        asyncio.get_running_loop().create_task(self._greet(sid, agent))

    async def _greet(self, sid: str, agent: Any) -> None:
        with contextlib.suppress(Exception):
            online = await self.agents.online()
            await self.emit(
                "hello",
                {"agent": agent.public(), "agentsOnline": len(online), "agents": online},
                to=sid,
            )
            await self.publish_presence(online)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        live = self.live.pop(sid, None)
        if live is None:
            return
        with contextlib.suppress(Exception):
            if await self.agents.disconnected(live.agent.id, sid):
                await self.publish_presence()

    def agent_of(self, sid: str) -> Any:
        return self.live[sid].agent

    # -- events ------------------------------------------------------------------------
    async def on_typing(self, sid: str, data: Any) -> None:
        data = self.check("typing", data)
        await self.container.conversations.agent_typing(
            data["sessionId"], self.agent_of(sid), data["isTyping"]
        )

    async def on_set_presence(self, sid: str, data: Any) -> None:
        data = self.check("set-presence", data)
        await self.agents.set_presence(self.agent_of(sid).id, data["presence"])
        await self.publish_presence()

    async def on_watch(self, sid: str, data: Any) -> None:
        data = self.check("watch", data)
        await self.container.chat.sessions.get(data["sessionId"])  # exists, or SessionNotFound
        await self.enter_room(sid, watch_room(data["sessionId"]))

    async def on_unwatch(self, sid: str, data: Any) -> None:
        data = self.check("unwatch", data)
        await self.leave_room(sid, watch_room(data["sessionId"]))

    async def on_suggest(self, sid: str, data: Any) -> None:
        data = self.check("suggest", data)
        suggestions = await self.container.suggestions.for_session(data["sessionId"])
        await self.emit(
            "suggestions", {"sessionId": data["sessionId"], "suggestions": suggestions}, to=sid
        )

    # -- presence ------------------------------------------------------------------------
    async def publish_presence(self, online: list[dict[str, Any]] | None = None) -> None:
        online = online if online is not None else await self.agents.online()
        self._online = online
        await self.emit("presence-updated", {"agents": online}, room=AGENTS)

    def _ensure_loop(self) -> None:
        if self._loop is None or self._loop.done():
            self._loop = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        interval = max(1.0, self.container.settings.presence_ttl / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:
                log.warning("agent presence refresh failed", exc_info=True)

    async def refresh(self) -> None:
        """Keep this instance's sockets live, drop those whose sign-in ended, and tell
        everyone when the set of online agents changed (e.g. another instance died)."""
        for sid, live in list(self.live.items()):
            try:
                await self.agents.authenticate(live.token)
            except DomainError:
                await self.emit("signed-out", {"reason": "your sign-in ended"}, to=sid)
                await self.disconnect(sid)
                self.live.pop(sid, None)
                await self.agents.disconnected(live.agent.id, sid)
        await self.agents.heartbeat([(live.agent.id, sid) for sid, live in self.live.items()])
        online = await self.agents.online()
        if online != self._online:
            await self.publish_presence(online)

    async def aclose(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop
