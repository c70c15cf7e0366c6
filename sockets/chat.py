"""The Socket.IO server and its events.

Client -> server: join-chat, send-message, join-agents.
Server -> client: chat-joined, typing, message-chunk, message-reset, message-received,
escalation-needed, agents-joined, error.
Bad input gets an `error {message, code}` event; the connection stays up.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from services.chat import ChatService
from services.errors import DomainError
from services.logs import request_id_var, session_id_var
from services.sessions import iso, new_id
from sockets.rooms import AGENTS, session_room
from sockets.validation import EventSchemas

log = logging.getLogger(__name__)

Handler = Callable[[str, Any], Awaitable[None]]


class ChatNamespace(socketio.AsyncNamespace):
    def __init__(self, container: Any, schemas: EventSchemas) -> None:
        super().__init__("/")
        self.container = container
        self.schemas = schemas

    @property
    def chat(self) -> ChatService:
        return self.container.chat

    async def fail(self, sid: str, code: str, message: str) -> None:
        await self.emit("error", {"message": message, "code": code}, to=sid)

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Every event runs here: unknown events and failures become `error` events."""
        request_id_var.set(new_id(8))
        session_id_var.set(None)
        handler = getattr(self, "on_" + event.replace("-", "_"), None)
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid = args[0]
        if handler is None:
            await self.fail(sid, "UNKNOWN_EVENT", f"unknown event {event[:64]!r}")
            return None
        try:
            return await handler(sid, args[1] if len(args) > 1 else None)
        except DomainError as exc:
            log.info("socket event refused", extra={"event": event, "code": exc.code})
            await self.fail(sid, exc.code, exc.detail)
        except Exception:
            log.exception("socket event failed", extra={"event": event})
            await self.fail(sid, "INTERNAL_ERROR", "Something went wrong; please try again.")
        return None

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        log.debug("socket connected")

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        log.debug("socket disconnected")

    async def on_join_chat(self, sid: str, data: Any) -> None:
        data = self.schemas.check("join-chat", data)
        if "sessionId" in data:
            session, transcript = await self.chat.history(data["sessionId"])
        else:
            session = await self.chat.start_session(
                user_id=data["userId"], metadata=data.get("metadata")
            )
            transcript = []
        await self.enter_room(sid, session_room(session.id))
        await self.emit(
            "chat-joined",
            {
                "sessionId": session.id,
                "userId": session.user_id,
                "createdAt": iso(session.created_at),
                "expiresAt": iso(session.expires_at),
                "status": session.status,
                "history": transcript,
            },
            to=sid,
        )

    async def on_send_message(self, sid: str, data: Any) -> None:
        data = self.schemas.check("send-message", data)
        room = session_room(data["sessionId"])
        joined = room in self.rooms(sid)
        if not joined:
            await self.enter_room(sid, room)  # the session id is the credential
        try:
            await self.chat.send(
                session_id=data["sessionId"],
                user_id=data.get("userId"),
                message=data["message"],
                origin_sid=sid,
            )
        except DomainError:
            if not joined:
                await self.leave_room(sid, room)
            raise

    async def on_join_agents(self, sid: str, data: Any) -> None:
        data = self.schemas.check("join-agents", data)
        expected = self.container.settings.admin_api_key
        if expected is None or not hmac.compare_digest(
            data["apiKey"].encode(), expected.get_secret_value().encode()
        ):
            await self.fail(sid, "UNAUTHORIZED", "agents need a valid API key")
            return
        await self.enter_room(sid, AGENTS)
        await self.emit("agents-joined", {"room": AGENTS}, to=sid)


def create_socket_server(container: Any, spec: dict[str, Any]) -> socketio.AsyncServer:
    settings = container.settings
    origins = settings.cors_origins
    sio = socketio.AsyncServer(
        async_mode="asgi",
        cors_allowed_origins="*" if origins == ["*"] else origins,
        max_http_buffer_size=64 * 1024,
        logger=False,
        engineio_logger=False,
    )
    sio.register_namespace(ChatNamespace(container, EventSchemas(spec)))
    return sio


def use_redis_manager(sio: socketio.AsyncServer, url: str, channel: str) -> None:
    """Fan events out across instances through Redis (before any client connects)."""
    sio.manager = socketio.AsyncRedisManager(url, channel=channel)
    sio.manager.set_server(sio)
