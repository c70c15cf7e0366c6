"""`make bench` (REST part, P1): N concurrent sessions over REST against the real server with
the embedded responder, then the same load against two Starlette baselines on the same
uvicorn: one doing the same service work without Connexion (bench/samework_app.py) and a
bare one doing only the Redis reads and writes (bench/baseline_app.py). Prints messages/s,
p50/p99 and the ratios.

    python -m bench.rest_load [--sessions 20] [--messages 15]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid

import httpx
import redis

QUESTIONS = [
    "How long does shipping take?",
    "Where is my order?",
    "How do I reset my password?",
    "What payment methods do you accept?",
    "Can I return a sweater I bought last week?",
    "Do you ship internationally?",
    "hello there",
    "How do I use a promo code?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(target: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if target.endswith("create_app"):
        cmd.append("--factory")
    return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL)


def bench_env() -> tuple[str, str, dict[str, str]]:
    """The Redis to use (BENCH_REDIS_URL), a fresh key prefix, and a production server's
    environment with the embedded responder only."""
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    env = {
        "APP_ENV": "production",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "SESSION_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": "",
        "GEMINI_API_KEY": "",
        # every simulated customer comes from 127.0.0.1: the rate limits must not be measured
        "RATE_LIMIT_SESSIONS": "1000000/hour",
        "RATE_LIMIT_MESSAGES": "1000000/minute",
        "RATE_LIMIT_REQUESTS": "1000000/minute",
        "RATE_LIMIT_SOCKET_EVENTS": "1000000/minute",
        "RATE_LIMIT_SOCKETS": "100000",
        "RATE_LIMIT_AGENTS": "1000000/minute",
        "LOGIN_MAX_FAILURES": "1000000",
        # the client keeps connections open between messages: no close racing a reuse
        "KEEP_ALIVE_TIMEOUT": "75",
    }
    return redis_url, prefix, env


def delete_keys(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(1200):  # two minutes: a busy machine starts slowly
            try:
                if (await client.get(url + "/api/v1/health")).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


async def drive(url: str, sessions: int, messages: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=sessions, max_keepalive_connections=sessions)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def conversation(i: int) -> None:
            nonlocal errors
            res = await client.post(
                "/api/v1/chat/session", json={"userId": f"bench{i}", "metadata": {}}
            )
            sid = res.json()["sessionId"]
            for m in range(messages):
                t0 = time.perf_counter()
                res = await client.post(
                    "/api/v1/chat/message",
                    json={
                        "sessionId": sid,
                        "message": QUESTIONS[(i + m) % len(QUESTIONS)],
                        "userId": f"bench{i}",
                    },
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += res.status_code != 200

        await asyncio.gather(*(conversation(i) for i in range(2)))  # warm-up
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(conversation(i) for i in range(sessions)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "messages": len(latencies),
        "errors": errors,
        "messages_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=15)
    args = parser.parse_args()
    redis_url, prefix, env = bench_env()
    results = {}
    targets = (
        ("supportbot", "app:create_app"),
        ("samework", "bench.samework_app:app"),  # the same ChatService call, no Connexion
        ("baseline", "bench.baseline_app:app"),  # less work: Redis only, no classifier/sealing
    )
    for name, target in targets:
        port = free_port()
        proc = start(target, port, {**env, "REDIS_KEY_PREFIX": prefix + name + ":"})
        try:
            await wait_ready(f"http://127.0.0.1:{port}")
            results[name] = await drive(f"http://127.0.0.1:{port}", args.sessions, args.messages)
        finally:
            proc.terminate()
            proc.wait(60)
    delete_keys(redis_url, prefix)
    rate = {name: results[name]["messages_per_s"] for name, _ in targets}
    results["ratio_messages_per_s"] = round(rate["supportbot"] / rate["baseline"], 3)
    results["ratio_to_samework"] = round(rate["supportbot"] / rate["samework"], 3)
    results["load"] = {"sessions": args.sessions, "messages_per_session": args.messages}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
