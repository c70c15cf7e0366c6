"""Clients of the fleet, each from its own loopback address (127.0.0.x), so nginx's
`hash $remote_addr` spreads them over the instances as it spreads real customers; and
conversations that keep talking and write down every message that was acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import socketio

LINE = re.compile(r'^(\S+) "[^"]*" \d+ upstream=(\S+)')


def http_from(ip: str, base_url: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=ip)
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=20, trust_env=False)


async def upstream_of(ips: list[str], url: str, access_log: Path) -> dict[str, str]:
    """Which instance ("127.0.0.1:port") nginx sends each address to, from its access log."""

    async def visit(ip: str) -> None:
        async with http_from(ip, url) as client:
            assert (await client.get("/health")).status_code == 200

    await asyncio.gather(*(visit(ip) for ip in ips))
    seen: dict[str, str] = {}
    for _ in range(100):  # the access log is flushed every 100 ms
        text = await asyncio.to_thread(access_log.read_text)
        for line in text.splitlines():
            if (m := LINE.match(line)) and m.group(1) in ips:
                seen[m.group(1)] = m.group(2).split(",")[-1].strip()
        if len(seen) == len(ips):
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"no access-log line for {set(ips) - set(seen)}")


class LiveClient:
    """A python-socketio client from one address that reconnects by itself (as the page
    and the console do) and rejoins on every `connect`; it records what it receives."""

    def __init__(self, ip: str, namespace: str = "/", transports: list[str] | None = None):
        self.ip, self.namespace = ip, namespace
        self.transports = transports or ["websocket"]
        self.session: aiohttp.ClientSession | None = None
        self.sio: socketio.AsyncClient | None = None
        self.received: dict[str, list[Any]] = defaultdict(list)
        self.connects = 0
        self.session_id: str | None = None
        self.changed = asyncio.Event()
        self.lost = asyncio.Event()  # set when the transport drops, replaced on connect

    async def open(self, url: str, auth: Any = None, events: tuple[str, ...] = ()) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(self.ip, 0)), trust_env=False
        )
        self.sio = socketio.AsyncClient(
            reconnection_delay=0.2,
            reconnection_delay_max=1,
            randomization_factor=0.2,
            http_session=self.session,
        )
        self.sio.on("connect", self._connected, namespace=self.namespace)
        self.sio.on("disconnect", self._disconnected, namespace=self.namespace)
        for name in ("chat-joined", "error", "message-received", "hello", *events):
            self.sio.on(name, self._recorder(name), namespace=self.namespace)
        await self.sio.connect(
            url,
            namespaces=[self.namespace],
            auth=auth,
            transports=self.transports,
            wait_timeout=10,
        )

    async def _connected(self) -> None:
        self.connects += 1
        self.lost = asyncio.Event()
        if self.session_id is not None and self.namespace == "/":  # rejoin the conversation
            assert self.sio is not None
            await self.sio.emit("join-chat", {"sessionId": self.session_id})
        self._touch()

    async def _disconnected(self, reason: Any = None) -> None:
        self.lost.set()

    async def call(self, event: str, data: Any, timeout: float = 20) -> Any:
        """Emit with an ack and wait for it; ConnectionError at once if the transport drops
        first (the client would otherwise wait out the timeout for an ack that cannot come:
        the instance died, or is restarting and dropped the transport). Not acknowledged,
        as a timeout would have it."""
        assert self.sio is not None
        lost = self.lost
        if lost.is_set():
            raise ConnectionError("not connected")
        call = asyncio.ensure_future(self.sio.call(event, data, self.namespace, timeout))
        dropped = asyncio.ensure_future(lost.wait())
        try:
            await asyncio.wait({call, dropped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dropped.cancel()
        if not call.done():
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            raise ConnectionError("the transport dropped before the ack")
        return call.result()

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None) -> None:
            self.received[name].append(data)
            if name == "chat-joined":
                self.session_id = data["sessionId"]
            self._touch()

        return record

    def _touch(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def until(self, predicate: Any, timeout: float = 60, what: str = "") -> None:
        async def wait() -> None:
            while not predicate():
                await self.changed.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{self.ip}: timed out waiting for {what}") from None

    async def join(self, user_id: str) -> str:
        assert self.sio is not None
        await self.sio.emit("join-chat", {"userId": user_id})
        await self.until(lambda: self.session_id is not None, what="chat-joined")
        assert self.session_id is not None
        return self.session_id

    async def close(self) -> None:
        if self.sio is not None:
            self.sio.reconnection = False
            # Not sio.disconnect(): a long-polling client would wait out its pending GET.
            await self.sio.eio.disconnect(abort=True)
            await self.sio.shutdown()
        if self.session is not None:
            await self.session.close()
        if self.sio is not None and self.sio.eio.read_loop_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.sio.eio.read_loop_task, 5)


class Talker:
    """Keeps one conversation going: sends numbered messages one after the other and keeps
    those that were acknowledged (a 200, or the event's ack); a failed one is not retried."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.acked: list[str] = []
        self.failed = 0
        self.task: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()
        self.progress = asyncio.Event()

    def start(self, send: Any) -> None:
        async def loop() -> None:
            n = 0
            while not self.stopping.is_set():
                n += 1
                text = f"{self.name} message {n}"
                try:
                    await send(text)
                except Exception:  # the instance died under it: not acknowledged
                    self.failed += 1
                    await asyncio.sleep(0.2)
                else:
                    self.acked.append(text)
                    self.progress.set()
                await asyncio.sleep(0.05)

        self.task = asyncio.create_task(loop())

    async def acks(self, count: int, timeout: float = 90) -> None:
        """Wait until `count` more messages were acknowledged."""
        goal = len(self.acked) + count
        async with asyncio.timeout(timeout):
            while len(self.acked) < goal:
                self.progress.clear()
                await self.progress.wait()

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.task, 60)


def in_order(acked: list[str], transcript: list[str]) -> bool:
    """Every acknowledged message is in the transcript, in the order it was sent."""
    remaining = iter(transcript)
    return all(any(text == seen for seen in remaining) for text in acked)
