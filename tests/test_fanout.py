"""Socket.IO's fan-out through Redis (sockets/fanout.py): emits leave in the background,
several per round trip, in order, as the plain python-socketio messages other instances
read; a shutdown sends every event emitted before it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import socketio
from redis.asyncio import Redis

from sockets.chat import close_redis_manager, use_redis_manager
from tests.conftest import redis_url, unique_prefix


async def received(pubsub: Any, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + 10
    while len(got) < count and asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message is not None:  # None: nothing yet, or the subscription's confirmation
            got.append(json.loads(message["data"]))
    return got


async def test_emits_reach_the_channel_in_order_and_closing_sends_what_is_pending() -> None:
    url = redis_url().split(",")[0]  # on a cluster any node: PUBLISH reaches every node
    channel = unique_prefix("fanout") + "socketio"
    listener = Redis.from_url(url)
    pubsub = listener.pubsub()
    await pubsub.subscribe(channel)
    sio = socketio.AsyncServer(async_mode="asgi")
    use_redis_manager(sio, url, channel)
    try:
        # many at once (they share pipelines), then one after another, then close at once
        await asyncio.gather(*(sio.emit("n", {"i": i}, to=f"room{i % 3}") for i in range(50)))
        for i in range(50, 60):
            await sio.emit("n", {"i": i}, to="room", namespace="/agents")
        await close_redis_manager(sio)
        got = await received(pubsub, 60)
    finally:
        await pubsub.aclose()
        await listener.aclose()
    assert len(got) == 60
    assert all(m["method"] == "emit" and m["event"] == "n" for m in got)
    numbers = [m["data"][0]["i"] for m in got]
    assert sorted(numbers[:50]) == list(range(50)) and numbers[50:] == list(range(50, 60))
    assert {m["room"] for m in got[50:]} == {"room"}
    assert {m["namespace"] for m in got[50:]} == {"/agents"}
    assert len({m["host_id"] for m in got}) == 1
