"""Builds the ASGI app: Connexion (REST, routed from openapi/) beside Socket.IO on one
port, with the page from public/. Run `python -m app` (or `uvicorn app:create_app --factory
--timeout-graceful-shutdown 5`: without a limit uvicorn waits ~20 s for long-polling clients)."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import connexion
import socketio
import uvicorn
from connexion.options import SwaggerUIOptions
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from handlers import problems
from handlers.headers import SecurityHeaders
from handlers.limits import RequestLimit
from handlers.middleware import (
    API_PREFIXES,
    ASYNCAPI_PATH,
    SPEC_PATH,
    BodyLimit,
    RequestContext,
    SocketGuard,
    split_traffic,
)
from handlers.observe import HttpObserver, MetricsServer, RouteTemplates
from handlers.validation import validator_map
from services.analytics.clock import Clock
from services.config import Settings, load_settings
from services.container import Container
from services.contract import api_spec, bundled_spec
from services.logs import configure_logging
from services.tracing import configure_tracing
from sockets.chat import close_redis_manager, create_socket_server, use_redis_manager
from sockets.drain import drop_transports
from sockets.notifier import SocketNotifier

ROOT = Path(__file__).resolve().parent
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> ASGIApp:
    """The app; `clock` (seconds since the epoch) is the analytics' time, for tests."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.pii_phone_region)
    configure_tracing(settings.version)  # OTLP export when OTEL_* ask for it and otel is in
    container = Container(settings, clock)
    spec = api_spec(settings.max_message_length)
    sio = create_socket_server(container, spec)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any):
        await container.start(notifier=SocketNotifier(sio))
        # Start-up's objects (models, catalogues, the spec) live as long as the process: out
        # of the collector's reach, a full collection no longer stops every request and
        # socket for 300-400 ms (python -m bench.gc_pause). Unfrozen at shutdown, so a
        # process that builds several apps (tests, a bench) can collect the stopped ones.
        gc.freeze()
        metrics_server = None
        if settings.metrics_port:  # /metrics without credentials, for a private network
            metrics_server = MetricsServer(
                container.prometheus, settings.host, settings.metrics_port
            )
            await metrics_server.start()
        if container.redis is not None:
            use_redis_manager(sio, settings.socketio_dsn, f"{settings.redis_key_prefix}socketio")
        try:
            yield {"container": container}
        finally:
            # Uvicorn has stopped listening and waited for HTTP requests; socket events
            # being answered finish now (up to SHUTDOWN_GRACE) while Redis is still open.
            if not await container.inflight.wait_idle():
                log.warning("shutdown grace over: %d socket events cut", container.inflight.count)
            await sio.namespace_handlers["/agents"].aclose()
            if metrics_server is not None:
                await metrics_server.aclose()
            await container.aclose()
            if container.redis is not None:
                await close_redis_manager(sio)
            gc.unfreeze()

    api = connexion.AsyncApp(
        __name__,
        specification_dir=ROOT / "openapi",
        lifespan=lifespan,
        validator_map=validator_map(),
    )
    validate_responses = not settings.is_production
    api.add_api(
        spec,
        base_path="/api/v1",
        strict_validation=True,
        validate_responses=validate_responses,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/ui"),
    )
    api.add_api(
        bundled_spec("root.yaml"),
        base_path="",
        name="root",
        strict_validation=True,
        validate_responses=validate_responses,
        swagger_ui_options=SwaggerUIOptions(serve_spec=False, swagger_ui=False),
    )
    problems.register(api)
    api.add_middleware(
        CORSMiddleware,
        position=connexion.middleware.MiddlewarePosition.BEFORE_EXCEPTION,
        allow_origins=settings.allowed_origins,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["*"],
    )
    static = Starlette(
        routes=[Mount("/", StaticFiles(directory=ROOT / "public", html=True, check_dir=False))]
    )
    routes = RouteTemplates(  # labels and span names: the spec's templates, never ids
        [("/api/v1", spec["paths"]), ("", bundled_spec("root.yaml")["paths"])],
        fixed=(SPEC_PATH, ASYNCAPI_PATH, "/api/v1/ui/"),
    )

    async def drain() -> None:
        """SIGTERM, once the listener is closed: the grace starts, sockets go elsewhere."""
        container.inflight.begin_drain()
        await drop_transports(sio)

    app = SecurityHeaders(
        RequestContext(
            SocketGuard(
                socketio.ASGIApp(
                    sio,
                    other_asgi_app=HttpObserver(
                        RequestLimit(
                            BodyLimit(split_traffic(api, static, json.dumps(spec).encode())),
                            container,
                        ),
                        container.metrics,
                        routes,
                        API_PREFIXES,
                    ),
                )
            )
        ),
        settings,
    )
    app.drain = drain  # type: ignore[attr-defined]  # for GracefulServer (python -m app)
    return app


class GracefulServer(uvicorn.Server):
    """Uvicorn, stopping for a rolling restart: on SIGTERM it closes its listener (new
    connections are refused, so the balancer picks another instance), tells the sockets to
    reconnect (sockets/drain.py), then lets requests and replies in flight finish for up to
    SHUTDOWN_GRACE seconds (uvicorn's graceful timeout, then the lifespan's wait)."""

    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self.drain = drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        try:
            await self.drain()
        except Exception:
            log.exception("telling sockets to reconnect failed")
        await super().shutdown()


def server_options(settings: Settings) -> dict[str, Any]:
    """Uvicorn's limits, set deliberately rather than left to its defaults."""
    return {
        "host": settings.host,
        "port": settings.port,
        "timeout_graceful_shutdown": settings.shutdown_grace,
        "access_log": False,  # RequestContext logs one line per request, with its id
        "server_header": False,
        # X-Forwarded-For is believed only from TRUSTED_PROXIES (services/guard/limits.py);
        # uvicorn's own proxy handling would believe any local peer's header.
        "proxy_headers": False,
        # Idle keep-alive connections close after this; behind a load balancer set it above
        # the balancer's idle timeout (60 s on most), or it may reuse a closed connection.
        "timeout_keep_alive": settings.keep_alive_timeout,
        # h11, not httptools: only h11 bounds the request line and headers (together, 16 KiB;
        # larger is refused with 400 before the app sees it).
        "http": "h11",
        "h11_max_incomplete_event_size": 16 * 1024,
        # A WebSocket frame; Socket.IO's own limit is 64 KiB (sockets/chat.py).
        "ws_max_size": 128 * 1024,
        # Open connections (sockets included) per process; past it uvicorn answers 503.
        "limit_concurrency": settings.max_connections or None,
    }


def main() -> None:
    """`python -m app`: serve on HOST:PORT from the settings (and .env)."""
    settings = load_settings()
    app: Any = create_app(settings)
    GracefulServer(uvicorn.Config(app, **server_options(settings)), app.drain).run()


if __name__ == "__main__":
    main()
