"""One contract for every session store: Redis (real, database 9) and process memory."""

import asyncio

import pytest

from services.container import in_process_redis
from services.store import Move, SessionStore
from tests.conftest import delete_prefix, unique_prefix


@pytest.fixture(params=["redis", "memory"])
async def store(request, redis):
    if request.param == "memory":
        yield SessionStore(in_process_redis(), "t:", backend="memory")
        return
    prefix = unique_prefix("store")
    yield SessionStore(redis, prefix)
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


ESCALATE = Move(allowed=("active",), to="escalated", queue="add", score=5.0, entry=b"sys")


async def test_a_step_applies_once_and_reports_the_state_that_refused_it(store):
    await store.create("s1", {"data": b"x", "createdAt": b"1", "status": b"active"}, 60_000)
    done = await store.move("s1", ESCALATE, 60_000)
    assert done.done and done.previous == "active" and done.length == 1
    again = await store.move("s1", ESCALATE, 60_000)
    assert again.code == -2 and again.previous == "escalated"
    assert await store.queue() == ["s1"]
    assert (await store.move("nope", ESCALATE, 60_000)).code == -1


async def test_only_the_holder_moves_a_held_conversation(store):
    await store.create("s1", {"data": b"x", "createdAt": b"1", "status": b"active"}, 60_000)
    await store.move("s1", ESCALATE, 60_000)
    claim = Move(allowed=("escalated",), to="assigned", set_fields=(("assignedTo", "a1"),))
    assert (await store.move("s1", claim, 60_000)).done
    release = Move(allowed=("assigned",), to="escalated", holder="a2")
    refused = await store.move("s1", release, 60_000)
    assert refused.code == -3 and refused.holder_id == "a1"
    assert (await store.move("s1", Move(("assigned",), "escalated", holder="a1"), 60_000)).done


async def test_a_waiting_conversation_does_not_expire_and_a_finished_one_does(store):
    await store.create("s1", {"data": b"x", "createdAt": b"1", "status": b"active"}, 150)
    await store.move("s1", ESCALATE, 150)
    await store.append("s1", b"still there?", 150)
    await asyncio.sleep(0.3)
    assert await store.get("s1") is not None
    assert await store.count_active() == 1
    await store.move("s1", Move(("escalated",), "resolved", queue="rem"), 150)
    await asyncio.sleep(0.3)
    assert await store.get("s1") is None
    assert await store.queue() == []


async def test_active_sessions_are_counted_and_expired_ones_drop_out(store):
    await store.create("a", {"data": b"x", "createdAt": b"1"}, 60_000)
    await store.create("b", {"data": b"x", "createdAt": b"1"}, 150)
    assert await store.count_active() == 2
    await asyncio.sleep(0.25)
    assert await store.count_active() == 1


async def test_ping_reports_latency(store):
    assert await store.ping() >= 0
