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

import logging
from typing import Any

import socketio

from services.batching import BatchQueue

log = logging.getLogger(__name__)
MAX_BATCH = 200
MAX_PENDING = 10_000  # beyond this an emit waits for the sender (a slow Redis slows emits)


class RedisFanOut(socketio.AsyncRedisManager):
    name = "supportbot-redis"
    connected: bool  # the base class's: False makes the next send reconnect

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel)
        self._queue: BatchQueue[dict[str, Any]] = BatchQueue(
            "socket.io fan-out", self._send, max_batch=MAX_BATCH, max_pending=MAX_PENDING
        )

    async def _publish(self, data: dict[str, Any]) -> None:
        self._queue.start()  # on the first emit: the manager is built before the loop runs
        await self._queue.put(data)

    async def flush(self) -> None:
        """Return once every message handed over before the call is sent (or given up)."""
        await self._queue.flush()

    async def stop(self) -> None:
        """Send what is pending, then stop the sender task."""
        await self._queue.aclose()

    async def _send(self, messages: list[dict[str, Any]]) -> None:
        payloads = [self.json.dumps(message) for message in messages]
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
                    "retrying" if retries_left else f"{len(payloads)} events not sent to others",
                    extra={"error": type(exc).__name__},
                )
                self.connected = False
