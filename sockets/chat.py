"""The Socket.IO server and the customers' events (namespace `/`; agents: sockets/agents.py).

Client -> server: join-chat, send-message, typing, rate, join-agents (API key, legacy).
Server -> client: chat-joined, typing, message-chunk, message-reset, message-received,
escalation-needed, agent-joined, conversation-updated, csat-request, rated, agents-joined,
error. Bad input gets an `error {message, code}` event; the connection stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any

import socketio

from handlers.limits import scope_address
from services.chat import ChatService
from services.errors import DomainError, RateLimited
from services.i18n import negotiate
from services.sessions import iso
from sockets.agents import AgentNamespace
from sockets.base import EventNamespace
from sockets.fanout import RedisFanOut
from sockets.rooms import AGENTS, session_room
from sockets.validation import EventSchemas

log = logging.getLogger(__name__)


class ChatNamespace(EventNamespace):
    """Customers, on `/`."""

    counted_by_handler = frozenset({"send-message"})  # with the session's messages limit

    def __init__(self, container: Any, schemas: EventSchemas) -> None:
        super().__init__("/", container, schemas)
        self.addresses: dict[str, str] = {}  # client address of each socket (rate limits)
        self.accept_languages: dict[str, str] = {}  # each socket's Accept-Language header

    @property
    def chat(self) -> ChatService:
        chat: ChatService = self.container.chat
        return chat

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        address = scope_address(environ.get("asgi.scope") or {}, self.container.limits)
        try:
            await self.container.limits.open_socket(address)
        except RateLimited as exc:
            raise ConnectionRefusedError(
                {"code": exc.code, "message": exc.detail, **exc.extensions}
            ) from None
        self.addresses[sid] = address
        if accept := environ.get("HTTP_ACCEPT_LANGUAGE"):
            self.accept_languages[sid] = str(accept)[:256]
        log.debug("socket connected")

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        address = self.addresses.pop(sid, None)
        self.accept_languages.pop(sid, None)
        if address is not None:
            await self.container.limits.close_socket(address)
        log.debug("socket disconnected")

    async def on_join_chat(self, sid: str, data: Any) -> None:
        data = self.check("join-chat", data)
        if "sessionId" in data:  # a rejoin: the id is the credential, the session knows its user
            session, transcript = await self.chat.history(data["sessionId"])
        else:
            await self.container.limits.hit("sessions", self.addresses.get(sid, "unknown"))
            session = await self.chat.start_session(
                user_id=data["userId"],
                metadata=data.get("metadata"),
                language=negotiate(
                    self.chat.catalogues.languages,
                    setting=data.get("language"),
                    accept_language=self.accept_languages.get(sid),
                ),
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
        data = self.check("send-message", data)
        await self.hit_with_event("messages", data["sessionId"])
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

    async def on_typing(self, sid: str, data: Any) -> None:
        data = self.check("typing", data)
        await self.chat.typing(data["sessionId"], data["isTyping"])

    async def on_rate(self, sid: str, data: Any) -> None:
        data = self.check("rate", data)
        rating = await self.container.conversations.rate(
            data["sessionId"], data["rating"], data.get("comment")
        )
        await self.emit("rated", {"sessionId": data["sessionId"], **rating}, to=sid)

    async def on_leave_contact(self, sid: str, data: Any) -> None:
        data = self.check("leave-contact", data)
        ticket, created = await self.container.tickets.create(data["sessionId"], data["email"])
        await self.emit(
            "contact-saved",
            {"sessionId": data["sessionId"], "ticketId": ticket.id, "created": created},
            to=sid,
        )

    async def on_identify(self, sid: str, data: Any) -> None:
        data = self.check("identify", data)
        identity = await self.container.identities.identify(
            data["sessionId"],
            user_id=data["userId"],
            name=data.get("name"),
            email=data.get("email"),
            signature=data.get("signature"),
        )
        await self.emit("identified", {"sessionId": data["sessionId"], **identity}, to=sid)

    async def on_join_agents(self, sid: str, data: Any) -> None:
        data = self.check("join-agents", data)
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
    origins = settings.allowed_origins  # [] is None here: the page's own origin only
    sio = socketio.AsyncServer(
        async_mode="asgi",
        cors_allowed_origins="*" if origins == ["*"] else (origins or None),
        max_http_buffer_size=64 * 1024,
        logger=False,
        engineio_logger=False,
    )
    schemas = EventSchemas(spec)
    sio.register_namespace(ChatNamespace(container, schemas))
    sio.register_namespace(AgentNamespace(container, schemas))
    return sio


def use_redis_manager(sio: socketio.AsyncServer, url: str, channel: str) -> None:
    """Fan events out across instances through Redis (before any client connects), with
    the PUBLISHes sent in the background, several per round trip (sockets/fanout.py)."""
    sio.manager = RedisFanOut(url, channel=channel)
    sio.manager.set_server(sio)


async def close_redis_manager(sio: socketio.AsyncServer) -> None:
    """Send the events still pending, stop the Redis manager's listener and close its
    connections (at shutdown; idempotent)."""
    manager = sio.manager
    if isinstance(manager, RedisFanOut):
        await manager.stop()
    listener = getattr(manager, "thread", None)
    if listener is not None and not listener.done():
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    for name in ("pubsub", "redis"):
        client = getattr(manager, name, None)
        if client is not None:
            await client.aclose()
