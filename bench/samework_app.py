"""The benchmark's second baseline: the same service work as the real message path (one
rate-limit script for the address and the session, the same ChatService call with the same
responder, Redis and encryption, the same Socket.IO notifier fanning its events out through
Redis, analytics written in the background), on the same uvicorn, with no Connexion (no
spec routing or validation, no middleware)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import socketio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.config import load_settings
from services.container import Container
from services.sessions import iso
from sockets.chat import close_redis_manager, use_redis_manager
from sockets.notifier import SocketNotifier

settings = load_settings()
container = Container(settings)
sio = socketio.AsyncServer(async_mode="asgi")  # no clients: its emits go out through Redis


async def create_session(request: Request) -> JSONResponse:
    body = await request.json()
    address = request.client.host if request.client else "-"
    await container.limits.hit_many([("requests", address), ("sessions", address)])
    session = await container.chat.start_session(
        user_id=body["userId"], metadata=body.get("metadata")
    )
    return JSONResponse(
        {
            "success": True,
            "sessionId": session.id,
            "userId": session.user_id,
            "createdAt": iso(session.created_at),
            "expiresAt": iso(session.expires_at),
            "status": session.status,
        }
    )


async def send_message(request: Request) -> JSONResponse:
    body = await request.json()
    address = request.client.host if request.client else "-"  # the same one call as the app's
    await container.limits.hit_many([("requests", address), ("messages", body["sessionId"])])
    result = await container.chat.send(
        session_id=body["sessionId"], user_id=body.get("userId"), message=body["message"]
    )
    reply: dict[str, Any] = {
        "success": True,
        "response": result.text,
        "needsEscalation": result.needs_escalation,
        "timestamp": result.timestamp,
        "confidence": result.confidence,
        "messageId": result.message_id,
        "provider": result.provider,
        "status": result.status,
    }
    return JSONResponse(reply)


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "healthy"})


@contextlib.asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    await container.start(notifier=SocketNotifier(sio))
    use_redis_manager(sio, settings.socketio_dsn, f"{settings.redis_key_prefix}socketio")
    try:
        yield
    finally:
        await container.aclose()
        await close_redis_manager(sio)


app = Starlette(
    routes=[
        Route("/api/v1/chat/session", create_session, methods=["POST"]),
        Route("/api/v1/chat/message", send_message, methods=["POST"]),
        Route("/api/v1/health", health),
    ],
    lifespan=lifespan,
)
