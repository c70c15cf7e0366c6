"""One contract for every session store: Redis (real, database 9) and process memory."""

import asyncio

import pytest

from services.store import MemorySessionStore, RedisSessionStore
from tests.conftest import delete_prefix, unique_prefix


@pytest.fixture(params=["redis", "memory"])
async def store(request, redis):
    if request.param == "memory":
        yield MemorySessionStore()
        return
    prefix = unique_prefix("store")
    yield RedisSessionStore(redis, prefix)
    await delete_prefix(redis, prefix)


async def test_create_then_get(store):
    await store.create("s1", {"data": b"sealed", "createdAt": b"1"}, 60_000)
    assert (await store.get("s1"))["data"] == b"sealed"
    assert await store.get("nope") is None


async def test_append_returns_the_new_length_and_needs_a_session(store):
    await store.create("s1", {"data": b"x", "createdAt": b"1"}, 60_000)
    assert await store.append("s1", b"a", 60_000) == 1
    assert await store.append("s1", b"b", 60_000) == 2
    assert await store.messages("s1") == [b"a", b"b"]
    assert await store.messages("s1", -1, -1) == [b"b"]
    assert await store.append("nope", b"a", 60_000) is None


async def test_concurrent_appends_lose_nothing(store):
    await store.create("s1", {"data": b"x", "createdAt": b"1"}, 60_000)
    lengths = await asyncio.gather(*(store.append("s1", b"m%d" % i, 60_000) for i in range(100)))
    assert sorted(lengths) == list(range(1, 101))
    assert len(await store.messages("s1")) == 100


async def test_sessions_expire_and_appends_slide_the_expiry(store):
    await store.create("s1", {"data": b"x", "createdAt": b"1"}, 300)
    await asyncio.sleep(0.2)
    assert await store.append("s1", b"a", 300) == 1  # slides the expiry by 300 ms
    await asyncio.sleep(0.2)
    assert await store.get("s1") is not None
    await asyncio.sleep(0.25)
    assert await store.get("s1") is None
    assert await store.messages("s1") == []
    assert await store.append("s1", b"late", 300) is None


async def test_escalation_happens_once(store):
    await store.create("s1", {"data": b"x", "createdAt": b"1"}, 60_000)
    assert await store.escalate("s1", b"r1") is True
    assert await store.escalate("s1", b"r2") is False
    fields = await store.get("s1")
    assert fields["status"] == b"escalated" and fields["escalation"] == b"r1"
    assert await store.escalate("nope", b"r") is None


async def test_active_sessions_are_counted_and_expired_ones_drop_out(store):
    await store.create("a", {"data": b"x", "createdAt": b"1"}, 60_000)
    await store.create("b", {"data": b"x", "createdAt": b"1"}, 150)
    assert await store.count_active() == 2
    await asyncio.sleep(0.25)
    assert await store.count_active() == 1


async def test_ping_reports_latency(store):
    assert await store.ping() >= 0
