"""`make bench` (P3, memory): RSS per idle connected customer. The server runs in its own
process (production settings, uvicorn as app.server_options sets it, one WebSocket
implementation at a time); the idle customers are held by other processes (one per 2,500
by default; bench/eio_clients.py): raw Engine.IO/Socket.IO v4 clients over the `websockets`
library (a connection, the `/` namespace joined, pings answered), far lighter than
python-socketio's client. RSS is read from /proc.

    python -m bench.socket_idle [--connections 10000] [--ws websockets-sansio,wsproto,websockets]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from bench.eio_clients import hold_many, raise_open_files
from bench.rest_load import bench_env, delete_keys, free_port, wait_ready


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start_server(port: int, ws: str | None, env: dict[str, str]) -> subprocess.Popen:
    """The app as `python -m app` serves it; `ws`: uvicorn's WebSocket implementation
    (None: its default choice, as in production)."""
    chosen = f", ws={ws!r}" if ws else ""
    code = (
        "import uvicorn, app; from services.config import load_settings; "
        "s = load_settings(); o = app.server_options(s); "
        f"o.update(port={port}, host='127.0.0.1', log_level='warning'{chosen}); "
        "uvicorn.run(app.create_app(s), **o)"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )


async def measure(port: int, pid: int, connections: int, processes: int) -> dict[str, float]:
    await asyncio.sleep(2)
    before = rss_mib(pid)
    connected, holders = await hold_many(f"http://127.0.0.1:{port}", connections, processes)
    try:
        await asyncio.sleep(5)  # idle
        after = rss_mib(pid)
    finally:
        for holder in holders:
            holder.close()
    return {
        "connected": connected,
        "rss_before_mib": round(before, 1),
        "rss_after_mib": round(after, 1),
        "kib_per_connection": round((after - before) * 1024 / max(connected, 1), 1),
    }


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM, then whatever is left of its process group (a language-detector worker
    that outlived it)."""
    server.terminate()
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--ws", default="websockets-sansio,wsproto,websockets")
    parser.add_argument("--processes", type=int, default=0, help="client processes (0: 1/2,500)")
    args = parser.parse_args()
    hard = raise_open_files()  # the server inherits it
    connections = min(args.connections, hard - 200)
    processes = args.processes or -(-connections // 2500)
    redis_url, prefix, env = bench_env()
    env |= {"MAX_CONNECTIONS": "0", "RATE_LIMIT_SOCKETS": str(connections * 2)}
    results = {}
    for ws in args.ws.split(","):
        port = free_port()
        server = start_server(port, ws, env | {"REDIS_KEY_PREFIX": f"{prefix}{ws}:"})
        try:
            await wait_ready(f"http://127.0.0.1:{port}")
            results[ws] = await measure(port, server.pid, connections, processes)
        finally:
            stop_server(server)
    delete_keys(redis_url, prefix)
    print(
        json.dumps(
            {"P3_idle_sockets": results, "tried": connections, "client_processes": processes},
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
