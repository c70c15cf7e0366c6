"""`make bench` (REST part, P1): N concurrent sessions over REST against the real server with
the embedded responder, and the same load against two Starlette baselines on the same
uvicorn: one doing the same service work without Connexion (bench/samework_app.py) and a
bare one doing only the Redis reads and writes (bench/baseline_app.py). The three run at
once and take turns in rounds (the order rotating), so a change in a shared machine's load
falls on all three. Prints messages/s, p50/p99, the server process's CPU time per message
(with its children; sessions' creation included), and the ratios.

    python -m bench.rest_load [--sessions 20] [--messages 15] [--rounds 3]
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


async def conversations(
    client: httpx.AsyncClient, sessions: int, messages: int, first: int = 0
) -> tuple[list[float], float, int]:
    """`sessions` conversations at once, `messages` each: latencies (ms), elapsed s, errors."""
    latencies: list[float] = []
    errors = 0

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

    started = time.perf_counter()
    await asyncio.gather(*(conversation(first + i) for i in range(sessions)))
    return latencies, time.perf_counter() - started, errors


def figures(latencies: list[float], elapsed: float, errors: int) -> dict[str, float]:
    latencies = sorted(latencies)
    return {
        "messages": len(latencies),
        "errors": errors,
        "messages_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
    }


def cpu_seconds(root: int) -> float:
    """CPU time (user + system) used so far by a process and its descendants (Linux /proc):
    per message, a figure a shared machine's load hardly moves."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, total = {root}, 0.0
    for pid in sorted(parents):  # children have larger ids than their parents here
        if parents[pid] in tree:
            tree.add(pid)
    for pid in tree:
        total += times.get(pid, 0.0)
    return total


def client_for(url: str, sessions: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=sessions, max_keepalive_connections=sessions)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=60)


async def drive(url: str, sessions: int, messages: int) -> dict[str, float]:
    async with client_for(url, sessions) as client:
        await conversations(client, 2, messages)  # warm-up
        return figures(*await conversations(client, sessions, messages))


TARGETS = (
    ("supportbot", "app:create_app"),
    ("samework", "bench.samework_app:app"),  # the same ChatService call, no Connexion
    ("baseline", "bench.baseline_app:app"),  # less work: Redis only, no classifier/sealing
)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    redis_url, prefix, env = bench_env()
    procs, urls = [], {}
    try:
        for name, target in TARGETS:  # all three up at once; only one is driven at a time
            port = free_port()
            urls[name] = f"http://127.0.0.1:{port}"
            procs.append(start(target, port, {**env, "REDIS_KEY_PREFIX": prefix + name + ":"}))
        for url in urls.values():
            await wait_ready(url)
        runs: dict[str, tuple[list[float], float, int]] = {n: ([], 0.0, 0) for n in urls}
        cpu = dict.fromkeys(urls, 0.0)
        pids = {name: proc.pid for name, proc in zip(urls, procs, strict=True)}
        clients = {name: client_for(url, args.sessions) for name, url in urls.items()}
        for client in clients.values():
            await conversations(client, 2, args.messages)  # warm-up
        for r in range(args.rounds):  # rounds, each target's turn rotating: a change in the
            order = list(urls)[r % 3 :] + list(urls)[: r % 3]  # machine's load hits all three
            for name in order:
                used = cpu_seconds(pids[name])
                lat, elapsed, errors = await conversations(
                    clients[name], args.sessions, args.messages, first=r * args.sessions
                )
                cpu[name] += cpu_seconds(pids[name]) - used
                total = runs[name]
                runs[name] = (total[0] + lat, total[1] + elapsed, total[2] + errors)
        for client in clients.values():
            await client.aclose()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
        delete_keys(redis_url, prefix)
    results: dict[str, object] = {
        name: figures(*run) | {"server_cpu_ms_per_message": round(cpu[name] * 1e3 / len(run[0]), 2)}
        for name, run in runs.items()
    }
    rate = {name: figures(*run)["messages_per_s"] for name, run in runs.items()}
    results["ratio_messages_per_s"] = round(rate["supportbot"] / rate["baseline"], 3)
    results["ratio_to_samework"] = round(rate["supportbot"] / rate["samework"], 3)
    results["samework_to_baseline"] = round(rate["samework"] / rate["baseline"], 3)
    results["load"] = {
        "sessions": args.sessions,
        "messages_per_session": args.messages,
        "rounds": args.rounds,
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
