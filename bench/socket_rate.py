"""`make bench` (P3, rate): with 1,000 customer sockets connected, the highest message rate
whose round-trip p99 stays under 100 ms, over Socket.IO and over REST, in the same run
against the same server (production settings, the embedded responder).

The sockets are held by separate processes (bench/eio_clients.py): most idle, `--talkers`
of them chatting. This process offers messages at a fixed rate (open loop: a message is
due every 1/rate s whether or not earlier ones were answered, and its round trip counts
from when it was due), over the talkers' sockets (`send-message` to its ack, which comes
once the reply is stored and emitted) or over REST (`POST /chat/message` to its 200, on as
many sessions, with keep-alive connections), and steps the rate up by `--step` until p99
passes the bound (or a message fails), both paths at each rate in turn. Both carry the same
idle sockets throughout.

    python -m bench.socket_rate [--sockets 1000] [--talkers 100] [--seconds 4] [--bound 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp

from bench.eio_clients import Talker, hold_many, raise_open_files, socket_url
from bench.rest_load import QUESTIONS, bench_env, delete_keys, free_port, wait_ready
from bench.socket_idle import start_server, stop_server

BOUND_MS = 100.0
TIMEOUT = 10.0  # a message unanswered this long counts as failed

Send = Callable[[int], Awaitable[None]]


async def offer(rate: float, seconds: float, send: Send) -> dict[str, float]:
    """`rate` messages/s for `seconds`, open loop; p50/p99 from when each was due."""
    loop = asyncio.get_running_loop()
    count = max(1, round(rate * seconds))
    latencies: list[float] = []
    failed = 0

    async def one(i: int, due: float) -> None:
        nonlocal failed
        try:
            await asyncio.wait_for(send(i), TIMEOUT)
        except Exception:
            failed += 1
        else:
            latencies.append((loop.time() - due) * 1000)

    start = loop.time() + 0.05
    tasks = []
    for i in range(count):
        due = start + i / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 1e9
    return {
        "offered_per_s": round(rate, 1),
        "answered": len(latencies),
        "failed": failed,
        "p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else 1e9,
        "p99_ms": round(p99 if not failed else 1e9, 1),
    }


async def step_up(
    paths: dict[str, Send], start: float, step: float, seconds: float, bound: float
) -> dict:
    """Both paths at each rate in turn (so both meet the same background load), stepping
    up until each passes the bound; a step past it is tried twice more before it counts
    (a 2-core machine shared with other work has hiccups). Each step lasts `seconds`, or
    long enough for 100 messages, so p99 is not simply the slowest one."""
    for send in paths.values():
        await offer(start, 2, send)  # warm-up
    results: dict[str, dict] = {name: {"sustained_per_s": 0.0, "steps": []} for name in paths}
    alive = list(paths)
    rate = start
    while alive:
        for name in list(alive):
            for _attempt in range(3):
                result = await offer(rate, max(seconds, 100 / rate), paths[name])
                print(f"{name}: {json.dumps(result)}", flush=True)
                results[name]["steps"].append(result)
                await asyncio.sleep(0.5)  # let the server settle between steps
                if result["p99_ms"] <= bound:
                    results[name]["sustained_per_s"] = round(rate, 1)
                    break
            else:
                alive.remove(name)
        alive.reverse()  # alternate which path goes first
        rate *= step
    return results


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--talkers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--start", type=float, default=8)
    parser.add_argument("--step", type=float, default=1.3)
    parser.add_argument("--bound", type=float, default=BOUND_MS, help="p99 bound, ms")
    args = parser.parse_args()
    raise_open_files()
    redis_url, prefix, env = bench_env()
    env |= {"MAX_CONNECTIONS": "0"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, None, env)
    holders = []
    talkers = [Talker() for _ in range(args.talkers)]
    http = aiohttp.ClientSession(
        base, connector=aiohttp.TCPConnector(limit=args.talkers), trust_env=False
    )
    try:
        await wait_ready(base)
        idle, holders = await hold_many(base, args.sockets - args.talkers, 1)
        for i, talker in enumerate(talkers):
            await talker.open(socket_url(base), f"talker{i}")
        rest_sessions = []
        for i in range(args.talkers):
            body = {"userId": f"rest{i}", "metadata": {}}
            async with http.post("/api/v1/chat/session", json=body) as res:
                rest_sessions.append((await res.json())["sessionId"])

        async def by_socket(i: int) -> None:
            await talkers[i % len(talkers)].send(QUESTIONS[i % len(QUESTIONS)])

        async def by_rest(i: int) -> None:
            body = {
                "sessionId": rest_sessions[i % len(rest_sessions)],
                "message": QUESTIONS[i % len(QUESTIONS)],
            }
            async with http.post("/api/v1/chat/message", json=body) as res:
                await res.read()
                if res.status != 200:
                    raise RuntimeError(f"REST answered {res.status}")

        started = time.perf_counter()
        results = await step_up(
            {"socket": by_socket, "rest": by_rest}, args.start, args.step, args.seconds, args.bound
        )
        results |= {
            "sockets_connected": idle + len(talkers),
            "bound_p99_ms": args.bound,
            "socket_to_rest": round(
                results["socket"]["sustained_per_s"]
                / max(results["rest"]["sustained_per_s"], 1e-9),
                2,
            ),
            "seconds": round(time.perf_counter() - started),
        }
    finally:
        await http.close()
        for talker in talkers:
            await talker.close()
        for holder in holders:
            holder.close()
        stop_server(server)
        delete_keys(redis_url, prefix)
    for path in ("socket", "rest"):  # the last step within the bound, and the ones past it
        steps = results[path].pop("steps")
        within = [r for r in steps if r["p99_ms"] <= results["bound_p99_ms"]]
        results[path] |= {"last_within": within[-1] if within else None, "past": steps[-2:]}
    print(json.dumps({"P3_rate_1000_sockets": results}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
