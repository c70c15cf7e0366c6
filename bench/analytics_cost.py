"""What counting costs: the analytics sink's time per customer message (the customer's
event and the bot's answer, on the message path), against a PING baseline timed in the
same run, and the summary and hourly timeseries over a year of filled days.

    python -m bench.analytics_cost [--redis redis://localhost:6379/0] [--messages 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import timedelta

from redis.asyncio import Redis

from services.analytics import Analytics
from services.config import Settings


def stats(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(len(samples) * 0.99)], 3),
    }


async def run(url: str, messages: int) -> dict[str, object]:
    prefix = f"bench:analytics:{uuid.uuid4().hex[:8]}:"
    settings = Settings(_env_file=None, redis_url=url, redis_key_prefix=prefix)
    redis = Redis.from_url(url)
    t = [time.time() - 365 * 86_400]
    analytics = Analytics(redis, settings, clock=lambda: t[0])
    attempt = {"provider": "openai", "model": "gpt-4.1-mini", "ok": True, "latencyMs": 800,
               "promptTokens": 900, "completionTokens": 120}  # fmt: skip
    ping, sink = [], []
    try:
        for n in range(messages):
            sid = f"s{n % 500}"
            started = time.perf_counter()
            await redis.ping()
            ping.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await analytics.publish(
                "message.customer", {"sessionId": sid, "userId": sid, "text": "where is my order"}
            )
            await analytics.publish(
                "message.bot", {"sessionId": sid, "escalated": [], "attempts": [attempt]}
            )
            sink.append((time.perf_counter() - started) * 1000)
            t[0] += 365 * 86_400 / messages  # spread over a year
        started = time.perf_counter()
        await analytics.summary(first=analytics.today() - timedelta(days=365))
        summary_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        await analytics.timeseries("containment", "hour", first=analytics.today() - timedelta(30))
        hourly_ms = (time.perf_counter() - started) * 1000
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    return {
        "messages": messages,
        "ping_baseline": stats(ping),
        "sink_per_message": stats(sink),
        "summary_366_days_ms": round(summary_ms, 1),
        "timeseries_hourly_31_days_ms": round(hourly_ms, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://localhost:6379/0")
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.redis, args.messages)), indent=2))


if __name__ == "__main__":
    main()
