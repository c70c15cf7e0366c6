"""The services' Notifier over Socket.IO: customers in their session's room on `/`,
agents on `/agents` in rooms for everyone, each agent, admins and watchers."""

from __future__ import annotations

from typing import Any

import socketio

from services.notifier import Notifier
from sockets.rooms import (
    ADMINS,
    AGENTS,
    AGENTS_NAMESPACE,
    agent_room,
    session_room,
    watch_room,
)


class SocketNotifier(Notifier):
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def typing(self, session_id: str, is_typing: bool) -> None:
        await self.to_customer(
            session_id, "typing", {"sessionId": session_id, "isTyping": is_typing, "sender": "bot"}
        )

    async def customer_message(
        self, session_id: str, payload: dict[str, Any], *, skip_sid: str | None
    ) -> None:
        event = {
            "sessionId": session_id,
            "messageId": payload["id"],
            "message": payload["content"],
            "timestamp": payload["timestamp"],
            "isBot": False,
            "sender": "customer",
            "userId": payload.get("userId"),
        }
        await self.to_customer(session_id, "message-received", event, skip_sid=skip_sid)
        await self._to_watchers(session_id, event)

    async def chunk(self, session_id: str, message_id: str, delta: str) -> None:
        await self.to_customer(
            session_id,
            "message-chunk",
            {"sessionId": session_id, "messageId": message_id, "delta": delta},
        )

    async def reset(self, session_id: str, message_id: str) -> None:
        await self.to_customer(
            session_id, "message-reset", {"sessionId": session_id, "messageId": message_id}
        )

    async def bot_message(self, session_id: str, payload: dict[str, Any]) -> None:
        event = {**payload, "sender": "bot"}
        await self.to_customer(session_id, "message-received", event)
        await self._to_watchers(session_id, event)

    async def _to_watchers(self, session_id: str, event: dict[str, Any]) -> None:
        """Admins and agents watching see the conversation live while the bot has it too
        (while a person has it, services send customer messages to the holder themselves)."""
        await self.sio.emit(
            "message-received",
            event,
            to=[ADMINS, watch_room(session_id)],
            namespace=AGENTS_NAMESPACE,
        )

    async def escalation(self, session_id: str, payload: dict[str, Any]) -> None:
        """To the customer's own room, API-key agents on `/`, and every agent on `/agents`."""
        await self.sio.emit("escalation-needed", payload, to=[session_room(session_id), AGENTS])
        await self.sio.emit("escalation-needed", payload, to=AGENTS, namespace=AGENTS_NAMESPACE)

    async def to_customer(
        self, session_id: str, event: str, payload: dict[str, Any], *, skip_sid: str | None = None
    ) -> None:
        await self.sio.emit(event, payload, to=session_room(session_id), skip_sid=skip_sid)

    async def to_agents(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        session_id: str | None = None,
        holder: str | None = None,
    ) -> None:
        if session_id is None:
            rooms = [AGENTS]
        else:
            rooms = [ADMINS, watch_room(session_id)]
            if holder:
                rooms.append(agent_room(holder))
        await self.sio.emit(event, payload, to=rooms, namespace=AGENTS_NAMESPACE)

    async def to_agent(self, agent_id: str, event: str, payload: dict[str, Any]) -> None:
        await self.sio.emit(event, payload, to=agent_room(agent_id), namespace=AGENTS_NAMESPACE)
