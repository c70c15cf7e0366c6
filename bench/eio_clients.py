"""Raw Engine.IO/Socket.IO v4 clients over the `websockets` library, far lighter than
python-socketio's client, for the socket benchmarks (bench/socket_idle.py,
bench/socket_rate.py): an idle customer (connected, `/` joined, pings answered) and a
talking one (joins a chat, sends `send-message` with an ack id and awaits the ack).

Idle customers are held by separate processes (`Holder`), so the process that measures
is neither the server nor the one keeping thousands of connections:

    python -m bench.eio_clients URL COUNT    # prints {"connected": n}, holds until stdin closes
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import resource
import subprocess
import sys
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

WAVE = 200  # customers arrive in waves, not all in one burst


def socket_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"


def raise_open_files() -> int:
    """The soft limit of open files up to the hard one; the new soft limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def _open(url: str) -> ClientConnection:
    """A connection with the `/` namespace joined (Engine.IO pings are answered later)."""
    ws = await connect(url, max_size=2**16, compression=None, ping_interval=None)
    await ws.recv()  # Engine.IO open
    await ws.send("40")  # Socket.IO connect to "/"
    while True:
        message = await ws.recv()
        if message == "2":
            await ws.send("3")
        elif isinstance(message, str) and message.startswith("40"):
            return ws


async def idle_customer(url: str, ready: asyncio.Queue[bool]) -> None:
    try:
        ws = await _open(url)
    except Exception:
        await ready.put(False)
        return
    await ready.put(True)
    with contextlib.suppress(Exception):
        async with ws:
            async for message in ws:
                if message == "2":
                    await ws.send("3")


async def hold(url: str, count: int) -> tuple[int, list[asyncio.Task[None]]]:
    """`count` idle customers, connected in waves; how many made it, and their tasks."""
    ready: asyncio.Queue[bool] = asyncio.Queue()
    tasks: list[asyncio.Task[None]] = []
    connected = 0
    for start in range(0, count, WAVE):
        batch = [
            asyncio.create_task(idle_customer(url, ready)) for _ in range(min(WAVE, count - start))
        ]
        tasks += batch
        for _ in batch:
            connected += await ready.get()
    return connected, tasks


class Holder:
    """A process holding `count` idle customers of `base_url` until `close()`."""

    def __init__(self, base_url: str, count: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.eio_clients", base_url, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    async def ready(self) -> int:
        assert self.process.stdout is not None
        line = await asyncio.to_thread(self.process.stdout.readline)
        return int(json.loads(line)["connected"]) if line else 0

    def close(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def hold_many(base_url: str, count: int, processes: int) -> tuple[int, list[Holder]]:
    """`count` idle customers spread over `processes` holder processes, connected one
    process after the other (a 2-core machine: the server accepts, one client connects)."""
    holders: list[Holder] = []
    connected = 0
    share, extra = divmod(count, processes)
    for i in range(processes):
        holder = Holder(base_url, share + (i < extra))
        holders.append(holder)
        connected += await holder.ready()
    return connected, holders


class Talker:
    """One customer in one chat: `send()` returns the round trip in seconds, from the
    `send-message` to its acknowledgement (sent once the reply is stored and emitted)."""

    def __init__(self) -> None:
        self.ws: ClientConnection | None = None
        self.session_id = ""
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[None]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def open(self, url: str, user_id: str) -> None:
        self.ws = ws = await _open(url)
        await ws.send("42" + json.dumps(["join-chat", {"userId": user_id}]))
        while not self.session_id:
            message = await ws.recv()
            if message == "2":
                await ws.send("3")
            elif isinstance(message, str) and message.startswith('42["chat-joined"'):
                self.session_id = json.loads(message[2:])[1]["sessionId"]
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(Exception):
            async for message in self.ws:
                if message == "2":
                    await self.ws.send("3")
                elif isinstance(message, str) and message.startswith("43"):
                    digits = "".join(itertools.takewhile(str.isdigit, message[2:]))
                    future = self.pending.pop(int(digits), None)
                    if future is not None and not future.done():
                        future.set_result(None)
        for future in self.pending.values():  # the connection ended: no ack will come
            if not future.done():
                future.set_exception(ConnectionError("socket closed"))

    async def send(self, text: str) -> None:
        assert self.ws is not None
        ack = next(self.ids)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending[ack] = future
        payload: list[Any] = ["send-message", {"sessionId": self.session_id, "message": text}]
        await self.ws.send(f"42{ack}" + json.dumps(payload))
        await future

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.reader, 5)


async def _serve_holder(base_url: str, count: int) -> None:
    raise_open_files()
    connected, tasks = await hold(socket_url(base_url), count)
    print(json.dumps({"connected": connected}), flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(_serve_holder(sys.argv[1], int(sys.argv[2])))
