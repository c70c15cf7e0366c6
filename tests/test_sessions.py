"""Sessions in Redis: sealed at rest, sliding expiry, the documented key layout."""

import asyncio

from services import keys
from tests.conftest import new_session


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
