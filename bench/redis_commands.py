"""How many Redis commands one REST message costs: the real app (production settings, the
embedded responder) and the two baselines of bench/rest_load.py, each on its own uvicorn,
with Redis MONITOR listening while sessions send messages (one after another within a
session; `--sessions` of them at once, so background writes of concurrent messages can
share pipelines). Session creation counts too (one per session). The background jobs'
commands are measured over an idle window of the same length and taken off. Prints, per
message, the commands the app sent (a pipeline counts each of its commands) and those Lua
scripts ran inside Redis, by command name, and for the app its round trips (its own count,
on /metrics, of the main client's commands, scripts and pipelines; not the fan-out's).

    BENCH_REDIS_URL=redis://127.0.0.1:PORT/0 python -m bench.redis_commands \
        [--sessions 1] [--messages 20]

Use a Redis of its own: MONITOR sees every client of the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import time
from collections import Counter
from urllib.parse import urlsplit

import httpx

from bench.rest_load import QUESTIONS, bench_env, delete_keys, free_port, start, wait_ready

LINE = re.compile(r'^\S+ \[(\d+) ([^\]]+)\] "([^"]+)"')


class Monitor:
    """`redis-cli monitor` in a subprocess; `window()` counts the commands seen meanwhile."""

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        host, port = parts.hostname or "127.0.0.1", str(parts.port or 6379)
        self.proc = subprocess.Popen(
            ["redis-cli", "-h", host, "-p", port, "monitor"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = asyncio.get_running_loop().run_in_executor(None, self._read)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def mark(self) -> int:
        return len(self.lines)

    def since(self, mark: int) -> tuple[Counter[str], Counter[str]]:
        """(commands sent by clients, commands run by Lua scripts) since `mark`."""
        sent: Counter[str] = Counter()
        lua: Counter[str] = Counter()
        for line in self.lines[mark:]:
            found = LINE.match(line)
            if not found:
                continue
            name = found.group(3).upper()
            (lua if found.group(2) == "lua" else sent)[name] += 1
        return sent, lua

    async def close(self) -> None:
        self.proc.terminate()
        await self.reader


async def round_trips(metrics_url: str | None) -> int:
    """The app's own count of its Redis round trips (commands, scripts and pipelines of its
    main client; not the Socket.IO fan-out's), from its /metrics."""
    if metrics_url is None:
        return 0
    async with httpx.AsyncClient() as client:
        text = (await client.get(metrics_url)).text
    for line in text.splitlines():
        if line.startswith("supportbot_redis_command_duration_seconds_count"):
            return int(float(line.split()[-1]))
    return 0


async def measure(
    url: str, monitor: Monitor, sessions: int, messages: int, metrics_url: str | None = None
) -> dict[str, object]:
    limits = httpx.Limits(max_connections=sessions, max_keepalive_connections=sessions)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def conversation(i: int, count: int) -> None:
            res = await client.post("/api/v1/chat/session", json={"userId": f"c{i}"})
            sid = res.json()["sessionId"]
            for m in range(count):
                res = await client.post(
                    "/api/v1/chat/message",
                    json={"sessionId": sid, "message": QUESTIONS[(i + m) % len(QUESTIONS)]},
                )
                res.raise_for_status()

        await conversation(0, 3)  # warm-up
        await asyncio.sleep(0.5)  # writes left behind by the warm-up land
        trips = await round_trips(metrics_url)
        mark, started = monitor.mark(), time.perf_counter()
        await asyncio.gather(*(conversation(i, messages) for i in range(sessions)))
        await asyncio.sleep(0.5)  # background writes of these messages land too
        elapsed = time.perf_counter() - started
        busy = monitor.since(mark)
        busy_trips = await round_trips(metrics_url) - trips
        mark = monitor.mark()
        await asyncio.sleep(elapsed)  # idle: the background jobs alone
        idle = monitor.since(mark)
        idle_trips = await round_trips(metrics_url) - trips - busy_trips
    messages *= sessions
    sent = busy[0] - idle[0]
    lua = busy[1] - idle[1]
    result: dict[str, object] = {}
    if metrics_url is not None:
        result["round_trips_per_message"] = round((busy_trips - idle_trips) / messages, 1)
    return result | {
        "sent_per_message": round(sum(sent.values()) / messages, 1),
        "lua_per_message": round(sum(lua.values()) / messages, 1),
        "sent": {k: round(v / messages, 2) for k, v in sent.most_common()},
        "lua": {k: round(v / messages, 2) for k, v in lua.most_common()},
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1, help="concurrent conversations")
    parser.add_argument("--messages", type=int, default=20, help="messages per conversation")
    args = parser.parse_args()
    redis_url, prefix, env = bench_env()
    monitor = Monitor(redis_url)
    results = {}
    targets = (
        ("supportbot", "app:create_app"),
        ("samework", "bench.samework_app:app"),
        ("baseline", "bench.baseline_app:app"),
    )
    try:
        for name, target in targets:
            port, extra, metrics_url = free_port(), {}, None
            if name == "supportbot":  # the app counts its round trips on /metrics
                extra["METRICS_PORT"] = str(free_port())
                metrics_url = f"http://127.0.0.1:{extra['METRICS_PORT']}/metrics"
            proc = start(target, port, {**env, **extra, "REDIS_KEY_PREFIX": prefix + name + ":"})
            try:
                await wait_ready(f"http://127.0.0.1:{port}")
                results[name] = await measure(
                    f"http://127.0.0.1:{port}", monitor, args.sessions, args.messages, metrics_url
                )
            finally:
                proc.terminate()
                proc.wait(60)
    finally:
        await monitor.close()
        delete_keys(redis_url, prefix)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
