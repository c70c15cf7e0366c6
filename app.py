"""Builds the ASGI app: Connexion (REST, from openapi/) beside Socket.IO on one port,
with the page from public/.  Run: `uvicorn app:create_app --factory`."""

from __future__ import annotations

import contextlib
import json
import re
import logging
import time
from pathlib import Path
from typing import Any

import connexion
import socketio
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.options import SwaggerUIOptions
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from services.config import Settings, load_settings
from services.container import Container
from services.contract import api_spec, bundled_spec
from services.errors import DomainError, InvalidPayload
from services.logs import configure_logging, request_id_var, session_id_var
from services.sessions import new_id
from sockets.chat import create_socket_server, use_redis_manager
from sockets.notifier import SocketNotifier

ROOT = Path(__file__).resolve().parent
log = logging.getLogger("app")
API_PREFIXES = ("/api/", "/health")
SPEC_PATH = "/api/v1/openapi.json"


def problem(status: int, title: str, detail: str, type_: str, code: str,
            headers: dict[str, str] | None = None) -> ConnexionResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail,
            "error": detail, "code": code}
    return ConnexionResponse(
        status_code=status, mimetype="application/problem+json",
        content_type="application/problem+json", body=json.dumps(body), headers=headers or None,
    )


def domain_error(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, DomainError)
    (log.error if exc.status >= 500 else log.warning)(
        "request refused", extra={"code": exc.code, "status": exc.status}
    )
    return problem(exc.status, exc.title, exc.detail, exc.type, exc.code)


def connexion_problem(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Connexion's own problems (validation, 404, 405, 415) with our `error` member."""
    assert isinstance(exc, connexion.ProblemException)
    status = exc.status or 500
    detail = str(exc.detail or exc.title or "error")
    if len(detail) > 300:  # validators quote the offending value; keep problems small
        detail = re.sub(r"^'(.{40}).*' (is |does |was )", r"'\1…' \2", detail, count=1, flags=re.S)
        detail = detail if len(detail) <= 300 else detail[:300] + "…"
    log.warning("request refused", extra={"status": status, "title": exc.title})
    title = exc.title or "Error"
    code = title.upper().replace(" ", "_")
    return problem(status, title, detail, exc.type or "about:blank", code,
                   headers=dict(exc.headers or {}))


def http_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    status = getattr(exc, "status_code", 500)
    detail = str(getattr(exc, "detail", "") or "error")
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.url.path))
    return problem(status, detail, detail, "about:blank", detail.upper().replace(" ", "_"),
                   headers=headers)


def _route_table() -> list[tuple[re.Pattern[str], list[str]]]:
    table = []
    for spec, base in (("openapi.yaml", "/api/v1"), ("root.yaml", "")):
        for template, item in bundled_spec(spec)["paths"].items():
            pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(base + template))
            methods = sorted(m.upper() for m in item if m in ("get", "put", "post", "delete", "patch"))
            table.append((re.compile(pattern + "$"), methods + (["HEAD"] if "GET" in methods else [])))
    return table


def allowed_methods(path: str) -> list[str]:
    """What the spec allows on a path, for a 405's Allow header (RFC 9110)."""
    for pattern, methods in ROUTES:
        if pattern.match(path):
            return methods
    return []


def bad_encoding(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    err = InvalidPayload("request body is not valid UTF-8 JSON")
    return problem(err.status, err.title, err.detail, err.type, err.code)


async def unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log.error("unexpected error", exc_info=exc)
    return problem(500, "Internal Server Error", "Something went wrong on our side.",
                   "about:blank", "INTERNAL_ERROR")


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
                log.info("request", extra={
                    "method": scope["method"], "route": route_of(scope["path"]),
                    "status": status, "ms": round((time.perf_counter() - started) * 1000, 2),
                })


class BodyLimit:
    """Refuse request bodies over a limit (413) before the app reads them into memory.

    A declared Content-Length is checked up front (the server enforces it); a chunked body
    is read here up to the limit and replayed to the app.
    """

    def __init__(self, app: ASGIApp, limit: int = 1 << 20,
                 large: tuple[str, int] = ("/api/v1/knowledge", 32 << 20)) -> None:
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
                return
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


async def too_large(send: Send, limit: int) -> None:
    detail = f"request body is larger than {limit} bytes"
    body = json.dumps({"type": "about:blank", "title": "Payload Too Large", "status": 413,
                       "detail": detail, "error": detail, "code": "PAYLOAD_TOO_LARGE"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def route_of(path: str) -> str:
    """The path with any session id masked: ids grant access and stay out of logs."""
    if path.startswith("/api/v1/chat/history/"):
        return "/api/v1/chat/history/{sessionId}"
    return path


ROUTES = _route_table()


def split_traffic(api: ASGIApp, static: ASGIApp, spec: bytes) -> ASGIApp:
    """The page's files, the bundled spec (named schemas, for client generators), the API."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == SPEC_PATH and scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(spec)).encode())]})
            return await send({"type": "http.response.body", "body": spec})
        if scope["type"] == "http" and not scope["path"].startswith(API_PREFIXES):
            return await static(scope, receive, send)
        return await api(scope, receive, send)

    return dispatch


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    container = Container(settings)
    spec = api_spec(settings.max_message_length)
    sio = create_socket_server(container, spec)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any):
        await container.start(notifier=SocketNotifier(sio))
        if container.redis is not None:
            use_redis_manager(sio, settings.redis_dsn, f"{settings.redis_key_prefix}socketio")
        try:
            yield {"container": container}
        finally:
            await container.aclose()

    api = connexion.AsyncApp(__name__, specification_dir=ROOT / "openapi", lifespan=lifespan)
    validate_responses = not settings.is_production
    api.add_api(
        spec, base_path="/api/v1", strict_validation=True,
        validate_responses=validate_responses,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/ui"),
    )
    api.add_api(
        bundled_spec("root.yaml"), base_path="", name="root", strict_validation=True,
        validate_responses=validate_responses,
        swagger_ui_options=SwaggerUIOptions(serve_spec=False, swagger_ui=False),
    )
    api.add_error_handler(DomainError, domain_error)
    api.add_error_handler(connexion.ProblemException, connexion_problem)
    api.add_error_handler(UnicodeDecodeError, bad_encoding)
    api.add_error_handler(404, http_error)
    api.add_error_handler(405, http_error)
    api.add_error_handler(Exception, unexpected)
    api.add_middleware(
        CORSMiddleware, position=connexion.middleware.MiddlewarePosition.BEFORE_EXCEPTION,
        allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["*"],
    )
    static = Starlette(routes=[Mount("/", StaticFiles(directory=ROOT / "public", html=True, check_dir=False))])
    return RequestContext(
        socketio.ASGIApp(sio, other_asgi_app=BodyLimit(split_traffic(api, static, json.dumps(spec).encode())))
    )


def main() -> None:
    """`python -m app`: serve on HOST:PORT from the settings (and .env)."""
    import uvicorn

    settings = load_settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                timeout_graceful_shutdown=5, access_log=False)


if __name__ == "__main__":
    main()
