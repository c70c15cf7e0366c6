"""Observing HTTP traffic: each request counted and timed by route template into the
instance's `Metrics` and traced as a server span; and the small app that serves
`/metrics` on METRICS_PORT without credentials (started in the app's lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from services import tracing
from services.metrics import Metrics
from services.prometheus import CONTENT_TYPE, Exporter

log = logging.getLogger(__name__)
STATIC = "static"  # the label of every page file: their paths are not a bounded set
OTHER = "other"  # an API path that no route matches


class RouteTemplates:
    """Maps a request path to the spec's template (`/api/v1/chat/history/{sessionId}`),
    so labels and span names stay a bounded set and carry no ids."""

    def __init__(self, routes: Iterable[tuple[str, Iterable[str]]], fixed: Iterable[str] = ()):
        self.exact = set(fixed)
        self.patterns: list[tuple[re.Pattern[str], str]] = []
        for base, paths in routes:
            for path in paths:
                template = base.rstrip("/") + path
                if "{" not in template:
                    self.exact.add(template)
                    continue
                pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
                self.patterns.append((re.compile(pattern + "$"), template))

    def template(self, path: str, api_prefixes: tuple[str, ...]) -> str:
        if path in self.exact:
            return path
        if not path.startswith(api_prefixes):
            return STATIC
        for pattern, template in self.patterns:
            if pattern.match(path):
                return template
        return OTHER


class HttpObserver:
    """Counts, times and traces every HTTP request that is not Socket.IO's (the sockets are
    counted and traced by their namespaces, sockets/base.py)."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, routes: RouteTemplates, api_prefixes: tuple[str, ...]
    ) -> None:
        self.app, self.metrics, self.routes, self.api_prefixes = app, metrics, routes, api_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method = scope["method"]
        path = scope["path"]
        route = self.routes.template(path, self.api_prefixes)
        status = 500
        started = time.perf_counter()

        async def observed_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        attributes = {"http.request.method": method, "http.route": route}
        with tracing.span(f"{method} {route}", attributes, kind="server") as span:
            try:
                await self.app(scope, receive, observed_send)
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    tracing.fail(span, str(status))
                self.metrics.http_requests[(method, route, str(status))] += 1
                self.metrics.http_latency.observe((method, route), time.perf_counter() - started)
        return None


def metrics_app(exporter: Exporter) -> ASGIApp:
    """GET /metrics without credentials (anything else is 404), for METRICS_PORT."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        found = scope["type"] == "http" and scope["path"] == "/metrics"
        if found and scope["method"] in ("GET", "HEAD"):
            status, body, kind = 200, await exporter.render(), CONTENT_TYPE
        else:
            status, body, kind = 404, b"not found: try /metrics\n", "text/plain; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", kind.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    return app


class MetricsServer:
    """A second uvicorn server in this process, on METRICS_PORT, serving `metrics_app`."""

    def __init__(self, exporter: Exporter, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(
            metrics_app(exporter),
            host=host,
            port=port,
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
        )
        self.server = uvicorn.Server(config)
        # The main server handles SIGTERM/SIGINT; this one must not take the handlers over.
        self.server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(), name="metrics-port")
        while not self.server.started:
            if self._task.done():  # e.g. the port is taken (uvicorn exits; it logged why)
                with contextlib.suppress(SystemExit):
                    await self._task
                raise RuntimeError(f"METRICS_PORT: cannot serve on port {self.server.config.port}")
            await asyncio.sleep(0.01)
        log.info("metrics served without credentials", extra={"port": self.server.config.port})

    async def aclose(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await self._task
