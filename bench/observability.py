"""What observing costs (issue 11): per Redis command, per HTTP request and per scrape.

    python -m bench.observability [--n 5000]

Each figure is measured against a baseline in the same run (a plain Redis client, the bare
ASGI app), alternating rounds so that a busy machine slows both alike; it prints the best
round of each (the least disturbed). "tracing on" installs an SDK tracer provider whose
processor drops every span (the cost of making spans, not of shipping them).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from handlers.observe import HttpObserver, RouteTemplates
from services.contract import api_spec
from services.metrics import Metrics
from services.prometheus import Exporter
from services.redis_observe import observe_redis
from tests.redis_server import start_redis_server

ROUNDS = 7


async def per_call(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    """Microseconds per call of `fn`, over n calls."""
    started = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - started) / n * 1e6


async def compare(
    base: Callable[[], Awaitable[Any]], observed: Callable[[], Awaitable[Any]], n: int
) -> tuple[float, float]:
    a, b = [], []
    for _ in range(ROUNDS):
        a.append(await per_call(base, n))
        b.append(await per_call(observed, n))
    return min(a), min(b)  # the best round: the least disturbed by a busy machine


def tracing_on() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)


async def bench_redis(url: str, n: int, label: str) -> None:
    plain, observed = Redis.from_url(url), observe_redis(Redis.from_url(url), Metrics())
    await plain.set("bench:obs", "x")
    try:
        base, obs = await compare(
            lambda: plain.get("bench:obs"), lambda: observed.get("bench:obs"), n
        )
        print(
            f"redis GET ({label}): plain {base:.1f} us, observed {obs:.1f} us, +{obs - base:.1f} us"
        )
    finally:
        await plain.delete("bench:obs")
        await plain.aclose()
        await observed.aclose()


async def bench_http(n: int, label: str) -> None:
    async def bare(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    spec = api_spec(4000)
    routes = RouteTemplates([("/api/v1", spec["paths"])])
    observed = HttpObserver(bare, Metrics(), routes, ("/api/",))
    scope = {"type": "http", "method": "GET", "path": "/api/v1/chat/history/abc123", "headers": []}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    base, obs = await compare(
        lambda: bare(scope, receive, send), lambda: observed(scope, receive, send), n
    )
    print(
        f"HTTP request ({label}): bare {base:.1f} us, observed {obs:.1f} us, +{obs - base:.1f} us"
    )


async def bench_scrape() -> None:
    class Sources:
        metrics = Metrics()
        responder = None
        conversations = None
        agents = None

    m = Sources.metrics
    for i in range(40):  # a busy instance: 40 routes x 4 statuses, 3 providers
        for status in ("200", "400", "404", "500"):
            m.http_requests[("GET", f"/api/v1/route{i}", status)] += 1
        m.http_latency.observe(("GET", f"/api/v1/route{i}"), 0.01)
    for p in ("openai", "gemini", "local"):
        for outcome in ("success", "failure"):
            m.provider_latency.observe((p, outcome), 0.5)
    exporter = Exporter(Sources())
    times = []
    for _ in range(50):
        started = time.perf_counter()
        body = await exporter.render()
        times.append((time.perf_counter() - started) * 1000)
    print(f"scrape render: {statistics.median(times):.2f} ms median for {len(body)} bytes")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    server = start_redis_server()
    try:
        await bench_redis(server.url, args.n, "no tracer")
        await bench_http(args.n, "no tracer")
        await bench_scrape()
        tracing_on()
        await bench_redis(server.url, args.n, "tracing on")
        await bench_http(args.n, "tracing on")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
