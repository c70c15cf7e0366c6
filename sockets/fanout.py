"""Socket.IO's fan-out through Redis, with its PUBLISHes off the caller's path.

python-socketio's AsyncRedisManager delivers an emit to this instance's own clients, then
awaits one PUBLISH for the other instances: one Redis round trip per emit, and a chat
message makes several (typing on and off, the echo of the customer's message, the reply,
each to the customer's room and to the agents watching). Here an emit delivers locally as
before, then hands its message to a sender task and returns; the task sends whatever has
gathered meanwhile as one pipeline (one round trip), in the order handed over, so every
instance still receives the same messages, in order, on the same channel: instances of
plain python-socketio (or its write-only emitters) share the channel unchanged.

`flush` waits until everything handed over so far is sent; `close_fanout` flushes before
the connections close, so a graceful shutdown sends every event emitted before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import socketio

log = logging.getLogger(__name__)
MAX_BATCH = 200
MAX_PENDING = 10_000  # beyond this an emit waits for the sender (a slow Redis slows emits)


class RedisFanOut(socketio.AsyncRedisManager):
    name = "supportbot-redis"
    connected: bool  # the base class's: False makes the next send reconnect

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel)
        self._pending: deque[dict[str, Any]] = deque()
        self._lock = asyncio.Lock()  # one pipeline at a time, in order
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None

    async def _publish(self, data: dict[str, Any]) -> None:
        self._pending.append(data)
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(
                self._send_loop(), name="socket.io fan-out"
            )
        self._wake.set()
        if len(self._pending) > MAX_PENDING:
            await self.flush()

    async def flush(self) -> None:
        """Return once every message handed over before the call is sent (or given up)."""
        while self._pending:
            await self._send_once()
        async with self._lock:  # a pipeline the sender took before we looked
            pass

    async def stop(self) -> None:
        """Send what is pending, then stop the sender task."""
        await self.flush()
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._send_once()

    async def _send_once(self) -> None:
        async with self._lock:
            count = min(MAX_BATCH, len(self._pending))
            if not count:
                return
            payloads = [self.json.dumps(self._pending.popleft()) for _ in range(count)]
            for retries_left in (1, 0):  # as the base class: two attempts, reconnecting
                try:
                    if not self.connected:
                        self._redis_connect()
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for payload in payloads:
                            pipe.publish(self.channel, payload)
                        await pipe.execute()
                    return
                except Exception as exc:
                    log.error(
                        "cannot publish socket events to Redis; %s",
                        "retrying" if retries_left else f"{count} events not sent to others",
                        extra={"error": type(exc).__name__},
                    )
                    self.connected = False
