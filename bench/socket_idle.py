"""`make bench` (P3, memory): RSS per idle connected customer. The server runs in its own
process (production settings, uvicorn as app.server_options sets it, one WebSocket
implementation at a time); the load generator is this process: raw Engine.IO/Socket.IO v4
clients over the `websockets` library (a connection, the `/` namespace joined, pings
answered), far lighter than python-socketio's client. RSS is read from /proc.

    python -m bench.socket_idle [--connections 10000] [--ws websockets-sansio,wsproto,websockets]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import subprocess
import sys
from pathlib import Path

from websockets.asyncio.client import connect

from bench.rest_load import bench_env, delete_keys, free_port, wait_ready


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start_server(port: int, ws: str, env: dict[str, str]) -> subprocess.Popen:
    code = (
        "import uvicorn, app; from services.config import load_settings; "
        "s = load_settings(); o = app.server_options(s); "
        f"o.update(port={port}, host='127.0.0.1', ws={ws!r}, log_level='warning'); "
        "uvicorn.run(app.create_app(s), **o)"
    )
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL)


async def idle_client(url: str, ready: asyncio.Queue[bool], stop: asyncio.Event) -> None:
    try:
        async with connect(url, max_size=2**16, compression=None) as ws:
            await ws.recv()  # Engine.IO open
            await ws.send("40")  # Socket.IO connect to "/"
            while True:
                message = await ws.recv()
                if message == "2":
                    await ws.send("3")
                elif isinstance(message, str) and message.startswith("40"):
                    break
            await ready.put(True)
            while not stop.is_set():
                recv = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({recv}, timeout=1)
                if recv in done and recv.result() == "2":
                    await ws.send("3")
                elif recv not in done:
                    recv.cancel()
    except Exception:
        await ready.put(False)


async def measure(port: int, pid: int, connections: int) -> dict[str, float]:
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    await asyncio.sleep(2)
    before = rss_mib(pid)
    ready: asyncio.Queue[bool] = asyncio.Queue()
    stop = asyncio.Event()
    tasks = []
    connected = 0
    for start in range(0, connections, 200):  # in waves, as customers arrive
        batch = [
            asyncio.create_task(idle_client(url, ready, stop))
            for _ in range(min(200, connections - start))
        ]
        tasks += batch
        for _ in batch:
            connected += await ready.get()
    await asyncio.sleep(5)  # idle
    after = rss_mib(pid)
    stop.set()
    for task in tasks:
        task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "connected": connected,
        "rss_before_mib": round(before, 1),
        "rss_after_mib": round(after, 1),
        "kib_per_connection": round((after - before) * 1024 / max(connected, 1), 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--ws", default="websockets-sansio,wsproto,websockets")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    connections = min(args.connections, hard - 200)
    redis_url, prefix, env = bench_env()
    env |= {"MAX_CONNECTIONS": "0", "RATE_LIMIT_SOCKETS": str(connections * 2)}
    results = {}
    for ws in args.ws.split(","):
        port = free_port()
        server = start_server(port, ws, env | {"REDIS_KEY_PREFIX": f"{prefix}{ws}:"})
        try:
            await wait_ready(f"http://127.0.0.1:{port}")
            results[ws] = await measure(port, server.pid, connections)
        finally:
            server.terminate()
            server.wait(60)
    delete_keys(redis_url, prefix)
    print(json.dumps({"P3_idle_sockets": results, "connections_tried": connections}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
