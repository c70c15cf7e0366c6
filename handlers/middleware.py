"""The ASGI layers around the API: request ids and access lines, body size limits,
and the split between the page's files, the served spec and the API."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from handlers.problems import problem_body
from services.asyncapi import asyncapi_for
from services.logs import request_id_var, session_id_var
from services.sessions import new_id

log = logging.getLogger("app")
API_PREFIXES = ("/api/", "/health", "/metrics")
SPEC_PATH = "/api/v1/openapi.json"
ASYNCAPI_PATH = "/api/v1/asyncapi.json"  # the Socket.IO events (services/asyncapi.py)


class RequestContext:
    """Request id (from X-Request-ID or new) for logs and the response; one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or new_id(8)
        request_id_var.set(rid)
        session_id_var.set(None)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["path"].startswith(API_PREFIXES):
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route_of(scope["path"]),
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )


class SocketGuard:
    """Engine.IO raises out of its websocket handler on some malformed frames (an empty
    one); the connection is over by then, so one warning instead of uvicorn's traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        try:
            await self.app(scope, receive, send)
        except ValueError as exc:
            log.warning("socket closed on a malformed frame", extra={"error": str(exc)[:120]})
        return None


class BodyLimit:
    """Refuse request bodies over a limit (413) before the app reads them into memory.

    A declared Content-Length is checked up front (the server enforces it); a chunked body
    is read here up to the limit and replayed to the app.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int = 1 << 20,
        large: tuple[str, int] = ("/api/v1/knowledge", 32 << 20),
    ) -> None:
        self.app, self.limit, self.large = app, limit, large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = self.large[1] if scope["path"].startswith(self.large[0]) else self.limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > limit:
                return await too_large(send, limit)
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return await too_large(send, limit)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
        return None


async def too_large(send: Send, limit: int) -> None:
    detail = f"request body is larger than {limit} bytes"
    body = json.dumps(
        problem_body(413, "Payload Too Large", detail, "about:blank", "PAYLOAD_TOO_LARGE")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def route_of(path: str) -> str:
    """The path with any session id masked: ids grant access and stay out of logs."""
    if path.startswith("/api/v1/chat/history/"):
        return "/api/v1/chat/history/{sessionId}"
    return path


def split_traffic(api: ASGIApp, static: ASGIApp, spec: bytes) -> ASGIApp:
    """The page's files, the bundled spec (named schemas, for client generators) and the
    AsyncAPI document of the socket events built from the same schemas, the API."""
    documents = {
        SPEC_PATH: spec,
        ASYNCAPI_PATH: json.dumps(asyncapi_for(json.loads(spec))).encode(),
    }

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in documents and scope["method"] == "GET":
            body = documents[scope["path"]]
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            return await send({"type": "http.response.body", "body": body})
        if scope["type"] == "http" and not scope["path"].startswith(API_PREFIXES):
            return await static(scope, receive, send)
        return await api(scope, receive, send)

    return dispatch
