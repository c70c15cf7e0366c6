"""Sessions in Redis: sealed at rest, sliding expiry, the documented key layout."""

import asyncio

import pytest

from services import keys
from services.crypto import Sealer, new_key
from services.errors import SessionNotFound
from services.sessions import SessionManager
from services.store import SessionStore
from tests.conftest import delete_prefix, new_session, unique_prefix


async def test_nothing_readable_in_redis(server_factory, redis):
    srv = await server_factory()
    secret = "my card ends in 4242 and I live at 1 Elm Street"
    async with srv.client() as api:
        res = await api.post(
            "/api/v1/chat/session",
            json={"userId": "carol@example.com", "metadata": {"plan": "gold-tier"}},
        )
        sid = res.json()["sessionId"]
        await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": secret})
    prefix = srv.settings.redis_key_prefix
    session_key, messages_key = (
        keys.session_key(prefix, sid),
        keys.session_part(prefix, sid, "messages"),
    )
    assert await redis.exists(session_key, messages_key) == 2
    raw = b"".join((await redis.hgetall(session_key)).values())
    raw += b"".join(await redis.lrange(messages_key, 0, -1))
    for plain in (
        b"4242",
        b"Elm Street",
        b"carol@example.com",
        b"gold-tier",
        b"assistant",
        b"content",
    ):
        assert plain not in raw
    assert await redis.zscore(f"{prefix}sessions:active", sid) is not None


async def test_sessions_expire_after_the_timeout_and_activity_slides_it(server_factory, redis):
    srv = await server_factory(session_timeout=1500)
    async with srv.client() as api:
        sid = await new_session(api)
        ttl = await redis.pttl(keys.session_key(srv.settings.redis_key_prefix, sid))
        assert 0 < ttl <= 1500
        await asyncio.sleep(0.9)
        assert (
            await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "hi"})
        ).status_code == 200
        await asyncio.sleep(0.9)
        assert (await api.get(f"/api/v1/chat/history/{sid}")).status_code == 200
        await asyncio.sleep(1.7)
        res = await api.get(f"/api/v1/chat/history/{sid}")
        assert res.status_code == 404
        assert (
            await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "hi"})
        ).status_code == 404


async def test_sessions_are_still_readable_after_a_restart_with_the_same_key(server_factory):
    first = await server_factory()
    async with first.client() as api:
        sid = await new_session(api)
        await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "remember me"})
    await first.stop()
    second = await server_factory(redis_key_prefix=first.settings.redis_key_prefix)
    async with second.client() as api:
        history = (await api.get(f"/api/v1/chat/history/{sid}")).json()["history"]
    assert history[0]["content"] == "remember me"


async def test_a_message_reads_the_session_and_its_current_episodes_recent_entries_at_once(
    redis,
):
    prefix = unique_prefix("recent")
    sessions = SessionManager(
        SessionStore(redis, prefix), Sealer.from_setting(new_key()), ttl_ms=60_000
    )
    try:
        session = await sessions.create(user_id="u")
        for i in range(6):
            await sessions.append(session.id, {"role": "user", "content": f"m{i}"})

        async def recent(count: int) -> list[str]:
            found, entries = await sessions.get_with_recent(session.id, count)
            assert found.id == session.id
            return [e["content"] for e in entries]

        assert await recent(3) == ["m3", "m4", "m5"]
        assert await recent(10) == [f"m{i}" for i in range(6)]
        assert await recent(0) == []
        # a new episode began at entry 4: the earlier ones are not this conversation's context
        await redis.hset(keys.session_key(prefix, session.id), "contextFrom", 4)
        assert await recent(3) == ["m4", "m5"]
        assert await recent(10) == ["m4", "m5"]
        with pytest.raises(SessionNotFound):
            await sessions.get_with_recent("no-such-session", 3)
    finally:
        await delete_prefix(redis, prefix)
