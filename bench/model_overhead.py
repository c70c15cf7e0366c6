"""`make bench` (P2): our latency on top of the model's. The fake model answers after a fixed
200 ms (bench/fake_model.py, its own process); C concurrent chats send M messages each through
the real server (production settings, the OpenAI responder pointed at the fake). The same
chats straight at the fake model (the same streamed request, read to its end, with the same
pauses) give the model's own latency; the difference at p50 and p99 is what the service
adds (sealing, Redis, classification, the SDK call, Connexion).
With no `--think` every chat sends its next message as soon as the last is answered: 200
chats then ask for about 1,000 messages/s, more than one instance's CPU gives, and the
difference is mostly queueing; `--think 5` (a person reading and typing) measures the
overhead at a load the instance can carry. The messages/s served is printed.

    python -m bench.model_overhead [--chats 200] [--messages 5] [--latency 0.2] [--think 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from collections import Counter

import aiohttp

from bench.rest_load import bench_env, delete_keys, free_port, start, wait_ready


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * q))], 2)


def start_model(port: int, latency: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.fake_model", str(port), str(latency)])


def session_for(url: str, chats: int) -> aiohttp.ClientSession:
    """aiohttp, not httpx: httpx's pool slows down with hundreds of connections (it scans
    them for every request), which made the fake model "alone" take seconds at 200 chats."""
    # a connection idle for 4 s is not reused: uvicorn closes idle ones after 5 s, and a
    # request sent as it does so fails (ClientOSError) before reaching the service
    connector = aiohttp.TCPConnector(limit=chats, limit_per_host=chats, keepalive_timeout=4)
    return aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=60))


async def model_alone(
    url: str, chats: int, messages: int, think: float = 0.0
) -> tuple[list[float], int]:
    body = {  # as the service asks: a stream, read to its end
        "model": "fake",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    latencies: list[float] = []
    errors = 0
    async with session_for(url, chats) as client:

        async def chat() -> None:
            nonlocal errors
            for _ in range(messages):
                if think:  # the same arrivals as through the service
                    await asyncio.sleep(think * (0.5 + random.random()))
                t0 = time.perf_counter()
                try:
                    async with client.post("/v1/chat/completions", json=body) as res:
                        await res.read()
                        ok = res.status == 200
                except aiohttp.ClientError:  # a connection dropped under load: counted
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += not ok

        await asyncio.gather(*(chat() for _ in range(chats)))
    return latencies, errors


async def through_service(
    url: str, chats: int, messages: int, think: float = 0.0
) -> tuple[list[float], int, Counter[str]]:
    """Latencies, errors, and what each error was (status and provider, or the exception)."""
    latencies: list[float] = []
    errors = 0
    kinds: Counter[str] = Counter()
    async with session_for(url, chats) as client:

        async def chat(i: int) -> None:
            nonlocal errors
            async with client.post(
                "/api/v1/chat/session", json={"userId": f"m{i}", "metadata": {}}
            ) as res:
                if res.status != 200:
                    raise RuntimeError(f"new session: {res.status} {(await res.text())[:200]}")
                sid = (await res.json())["sessionId"]
            for m in range(messages):
                if think:  # a person reads and types; spread the chats' starts too
                    await asyncio.sleep(think * (0.5 + random.random()))
                t0 = time.perf_counter()
                try:
                    async with client.post(
                        "/api/v1/chat/message",
                        json={"sessionId": sid, "message": f"Where is my order number {m}?"},
                    ) as res:
                        reply = await res.json(content_type=None)
                        ok = res.status == 200 and reply.get("provider") == "openai"
                except aiohttp.ClientError as exc:  # a connection dropped under load: counted
                    errors += 1
                    kinds[type(exc).__name__] += 1
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                if not ok:
                    errors += 1
                    reasons = reply.get("escalation", {}).get("reasons", [])
                    rules = ",".join(r.get("rule", "?") for r in reasons)
                    kinds[f"{res.status} {reply.get('provider')} {rules}".strip()] += 1

        await asyncio.gather(*(chat(i) for i in range(chats)))
    return latencies, errors, kinds


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--think", type=float, default=0.0, help="mean seconds a chat waits between messages"
    )
    args = parser.parse_args()
    redis_url, prefix, env = bench_env()
    model_port, port = free_port(), free_port()
    model = start_model(model_port, args.latency)
    model_url = f"http://127.0.0.1:{model_port}"
    env |= {
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": model_url + "/v1",
        "AI_PROVIDER_ORDER": "openai,local",
        "MAX_CONNECTIONS": "0",
    }
    server = start("app:create_app", port, env)
    try:
        await wait_ready(f"http://127.0.0.1:{port}")
        await through_service(f"http://127.0.0.1:{port}", 4, 2)  # warm-up
        alone, model_errors = await model_alone(model_url, args.chats, args.messages, args.think)
        started = time.perf_counter()
        ours, errors, kinds = await through_service(
            f"http://127.0.0.1:{port}", args.chats, args.messages, args.think
        )
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        model.terminate()
        server.wait(60)
        model.wait(60)
    delete_keys(redis_url, prefix)
    result = {
        "model_alone_ms": {"p50": percentile(alone, 0.5), "p99": percentile(alone, 0.99)},
        "through_service_ms": {"p50": percentile(ours, 0.5), "p99": percentile(ours, 0.99)},
        "added_ms": {
            "p50": round(statistics.median(ours) - statistics.median(alone), 2),
            "p99": round(percentile(ours, 0.99) - percentile(alone, 0.99), 2),
        },
        "errors": errors,
        "error_kinds": dict(kinds),
        "model_alone_errors": model_errors,
        "load": {
            "chats": args.chats,
            "messages_per_chat": args.messages,
            "model_s": args.latency,
            "think_s": args.think,
            "messages_per_s": round(len(ours) / elapsed, 1),
        },
    }
    print(json.dumps({"P2_model_overhead": result}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
