"""`make bench` (fleet): messages/s through nginx (deploy/nginx.conf, as `make fleet` runs it)
with 1, 2 and 4 instances on one Redis. Each simulated customer comes from its own loopback
address (127.0.0.x), so nginx's address hash spreads them as it spreads real customers. On a
2-core machine this shows the balancer's and the fan-out's overhead, not scaling.

    python -m bench.fleet_load [--instances 1,2,4] [--sessions 24] [--messages 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx

from bench.rest_load import QUESTIONS, bench_env, delete_keys
from deploy.fleet import start_fleet


async def drive(url: str, sessions: int, messages: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0

    async def conversation(i: int) -> None:
        nonlocal errors
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{10 + i}")
        async with httpx.AsyncClient(
            base_url=url, transport=transport, timeout=60, trust_env=False
        ) as client:
            res = await client.post(
                "/api/v1/chat/session", json={"userId": f"fleet{i}", "metadata": {}}
            )
            sid = res.json()["sessionId"]
            for m in range(messages):
                t0 = time.perf_counter()
                res = await client.post(
                    "/api/v1/chat/message",
                    json={"sessionId": sid, "message": QUESTIONS[(i + m) % len(QUESTIONS)]},
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
        "messages_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "errors": errors,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", default="1,2,4")
    parser.add_argument("--sessions", type=int, default=24)
    parser.add_argument("--messages", type=int, default=10)
    args = parser.parse_args()
    redis_url, prefix, env = bench_env()
    env["MAX_CONNECTIONS"] = "0"
    results = {}
    for n in (int(x) for x in args.instances.split(",")):
        fleet = await start_fleet(env | {"REDIS_KEY_PREFIX": f"{prefix}{n}:"}, n)
        try:
            results[f"{n}_instances"] = await drive(fleet.url, args.sessions, args.messages)
        finally:
            await fleet.stop()
    delete_keys(redis_url, prefix)
    results["load"] = {"sessions": args.sessions, "messages_per_session": args.messages}
    print(json.dumps({"fleet_through_nginx": results}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
