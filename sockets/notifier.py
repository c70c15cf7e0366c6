"""ChatService's Notifier over Socket.IO: everything goes to the session's room."""

from __future__ import annotations

from typing import Any

import socketio

from sockets.rooms import AGENTS, session_room


class SocketNotifier:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def typing(self, session_id: str, is_typing: bool) -> None:
        await self.sio.emit(
            "typing", {"sessionId": session_id, "isTyping": is_typing}, to=session_room(session_id)
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
            "userId": payload.get("userId"),
        }
        await self.sio.emit(
            "message-received", event, to=session_room(session_id), skip_sid=skip_sid
        )

    async def chunk(self, session_id: str, message_id: str, delta: str) -> None:
        await self.sio.emit(
            "message-chunk",
            {"sessionId": session_id, "messageId": message_id, "delta": delta},
            to=session_room(session_id),
        )

    async def reset(self, session_id: str, message_id: str) -> None:
        await self.sio.emit(
            "message-reset",
            {"sessionId": session_id, "messageId": message_id},
            to=session_room(session_id),
        )

    async def bot_message(self, session_id: str, payload: dict[str, Any]) -> None:
        await self.sio.emit("message-received", payload, to=session_room(session_id))

    async def escalation(self, session_id: str, payload: dict[str, Any]) -> None:
        """To the customer's own room and to the agents; never to every client."""
        await self.sio.emit("escalation-needed", payload, to=[session_room(session_id), AGENTS])
