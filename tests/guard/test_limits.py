"""Rate limits (services/guard/limits.py) through the real doors: a real server on real
Redis, real HTTP and Socket.IO clients. Windows are tiny (`3/2 second`) so each test hits a
limit, reads the 429 (or the socket's error) and waits out the window to recover."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import socketio
from fakeredis import FakeAsyncRedis

from services.errors import RateLimited
from services.guard.limits import RateLimits, client_address, parse_networks
from tests.agents.conftest import (
    ADMIN,
    AGENT_EVENTS,
    CUSTOMER_EVENTS,
    Recorder,
    desk_settings,
    login,
)
from tests.conftest import delete_prefix, make_settings, new_session, unique_prefix

ADMIN_KEY = "guard-admin-key"


def assert_limited(res: httpx.Response) -> int:
    """A 429 problem with Retry-After; the seconds to wait."""
    assert res.status_code == 429, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    body = res.json()
    assert body["code"] == "RATE_LIMITED"
    assert body["status"] == 429
    retry_after = int(res.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert body["retryAfter"] == retry_after
    return retry_after


async def create(api: httpx.AsyncClient, **headers: str) -> httpx.Response:
    return await api.post(
        "/api/v1/chat/session", json={"userId": "u1", "metadata": {}}, headers=headers
    )


async def message(api: httpx.AsyncClient, sid: str, text: str = "Where is my order?") -> Any:
    return await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": text})


# -- the client address ------------------------------------------------------------------
def test_client_address_believes_only_trusted_proxies() -> None:
    proxies = parse_networks(["127.0.0.1", "10.0.0.0/8"])
    # from an untrusted peer the header is ignored
    assert client_address("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"
    assert client_address("203.0.113.9", "1.2.3.4", []) == "203.0.113.9"
    # from a trusted peer: the right-most hop that is not a trusted proxy
    assert client_address("127.0.0.1", "1.2.3.4", proxies) == "1.2.3.4"
    assert client_address("127.0.0.1", "6.6.6.6, 1.2.3.4, 10.1.2.3", proxies) == "1.2.3.4"
    # only proxies in the chain: the left-most of them; garbage stops the walk
    assert client_address("127.0.0.1", "10.0.0.2, 10.0.0.1", proxies) == "10.0.0.2"
    assert client_address("127.0.0.1", "not-an-ip, 10.0.0.1", proxies) == "10.0.0.1"
    assert client_address("127.0.0.1", "", proxies) == "127.0.0.1"
    assert client_address(None, None, proxies) == "unknown"


async def test_memory_storage_without_redis() -> None:
    """No Redis: the same windows in this process's memory."""
    limits = RateLimits.from_settings(
        make_settings(rate_limit_messages="2/2 second"), None, FakeAsyncRedis()
    )
    await limits.hit("messages", "s1")
    await limits.hit("messages", "s1")
    with pytest.raises(RateLimited) as caught:
        await limits.hit("messages", "s1")
    assert 1 <= caught.value.retry_after <= 2
    await limits.hit("messages", "s2")  # another session has its own window


async def test_hit_many_counts_in_turn_and_stops_at_the_first_full_window(redis: Any) -> None:
    """One call for several windows behaves as hit after hit: the first full window refuses
    and the windows after it are not counted; the library's own calls see the same counts
    (on one server one script, on a cluster one call per window)."""
    prefix = unique_prefix("hitmany")
    settings = make_settings(
        redis_key_prefix=prefix, rate_limit_requests="3/minute", rate_limit_messages="2/minute"
    )
    limits = RateLimits.from_settings(settings, redis, redis)
    try:
        both: list[Any] = [("requests", "198.51.100.7"), ("messages", "s1")]
        await limits.hit_many(both)
        await limits.hit_many(both)
        with pytest.raises(RateLimited) as caught:  # messages full: requests still counted
            await limits.hit_many(both)
        assert "session" in caught.value.detail and 1 <= caught.value.retry_after <= 60
        with pytest.raises(RateLimited) as caught:  # 3 requests counted: the address is full
            await limits.hit("requests", "198.51.100.7")
        assert "address" in caught.value.detail
        await limits.hit_many([("requests", "198.51.100.8"), ("messages", "s2")])
        await limits.hit("messages", "s2")  # s2 took one from hit_many and this one
        with pytest.raises(RateLimited) as caught:
            await limits.hit_many([("requests", "198.51.100.8"), ("messages", "s2")])
        assert "session" in caught.value.detail
        await limits.hit("requests", "198.51.100.9")
        await limits.hit("requests", "198.51.100.9")
        await limits.hit("requests", "198.51.100.9")
        with pytest.raises(RateLimited) as caught:  # the address is full: s3 is not counted
            await limits.hit_many([("requests", "198.51.100.9"), ("messages", "s3")])
        assert "address" in caught.value.detail
        await limits.hit("messages", "s3")
        await limits.hit("messages", "s3")
    finally:
        await limits.aclose()
        await delete_prefix(redis, prefix)


# -- REST ----------------------------------------------------------------------------------
async def test_new_sessions_per_address(server_factory: Any) -> None:
    srv = await server_factory(rate_limit_sessions="3/2 second")
    async with srv.client() as api:
        for _ in range(3):
            assert (await create(api)).status_code == 200
        wait = assert_limited(await create(api))
        await asyncio.sleep(wait + 0.1)
        assert (await create(api)).status_code == 200


async def test_messages_per_session(server_factory: Any) -> None:
    srv = await server_factory(rate_limit_messages="3/2 second")
    async with srv.client() as api:
        sid, other = await new_session(api), await new_session(api)
        for _ in range(3):
            assert (await message(api, sid)).status_code == 200
        wait = assert_limited(await message(api, sid))
        assert (await message(api, other)).status_code == 200  # per session
        await asyncio.sleep(wait + 0.1)
        assert (await message(api, sid)).status_code == 200


async def test_requests_per_address(server_factory: Any) -> None:
    srv = await server_factory(rate_limit_requests="4/2 second")
    async with srv.client() as api:
        sid = await new_session(api)
        for _ in range(3):
            assert (await api.get(f"/api/v1/chat/history/{sid}")).status_code == 200
        wait = assert_limited(await api.get(f"/api/v1/chat/history/{sid}"))
        assert_limited(await create(api))  # every REST request counts against the address
        assert (await api.get("/health")).status_code == 200  # load balancers are not limited
        await asyncio.sleep(wait + 0.1)
        assert (await api.get(f"/api/v1/chat/history/{sid}")).status_code == 200


async def test_chat_posts_count_against_the_address_too(server_factory: Any) -> None:
    """A new session and a message count against the address with their own limit in one
    call; a message refused by validation (400) is counted all the same."""
    srv = await server_factory(rate_limit_requests="4/3 second")
    async with srv.client() as api:
        sid = await new_session(api)
        assert (await message(api, sid)).status_code == 200
        bad = await api.post("/api/v1/chat/message", json={"sessionId": sid})
        assert bad.status_code == 400
        assert (await api.get(f"/api/v1/chat/history/{sid}")).status_code == 200
        wait = assert_limited(await message(api, sid))  # the fifth request from the address
        assert_limited(await create(api))
        assert_limited(await api.post("/api/v1/chat/message", json={"sessionId": sid}))
        await asyncio.sleep(wait + 0.1)
        assert (await message(api, sid)).status_code == 200


async def test_two_instances_share_one_count(server_factory: Any) -> None:
    prefix = unique_prefix("guard")
    one = await server_factory(rate_limit_sessions="4/5 second", redis_key_prefix=prefix)
    two = await server_factory(rate_limit_sessions="4/5 second", redis_key_prefix=prefix)
    async with one.client() as a, two.client() as b:
        for api in (a, b, a, b):
            assert (await create(api)).status_code == 200
        assert_limited(await create(a))
        assert_limited(await create(b))


async def test_spoofed_forwarded_for_is_ignored(server_factory: Any) -> None:
    """The peer (127.0.0.1) is no trusted proxy: each new X-Forwarded-For is the same client."""
    srv = await server_factory(rate_limit_sessions="2/10 second")
    async with srv.client() as api:
        for n in range(2):
            assert (await create(api, **{"X-Forwarded-For": f"198.51.100.{n}"})).status_code == 200
        assert_limited(await create(api, **{"X-Forwarded-For": "198.51.100.77"}))


async def test_forwarded_for_from_a_trusted_proxy(server_factory: Any) -> None:
    srv = await server_factory(rate_limit_sessions="2/10 second", trusted_proxies="127.0.0.1")
    async with srv.client() as api:
        alice = {"X-Forwarded-For": "198.51.100.1"}
        for _ in range(2):
            assert (await create(api, **alice)).status_code == 200
        assert_limited(await create(api, **alice))
        # another client behind the proxy has its own window, even if it forges a hop
        bob = {"X-Forwarded-For": "198.51.100.1, 198.51.100.2"}
        assert (await create(api, **bob)).status_code == 200


async def test_agent_login_uses_the_client_address(server_factory: Any) -> None:
    """The login throttle counts the forwarded address behind a trusted proxy."""
    srv = await server_factory(trusted_proxies="127.0.0.1", login_max_failures=2)
    async with srv.client() as api:

        async def fail(n: int, address: str) -> httpx.Response:
            return await api.post(
                "/api/v1/agents/login",
                json={"email": f"nobody{n}@example.com", "password": "wrong-password"},
                headers={"X-Forwarded-For": address},
            )

        assert (await fail(1, "198.51.100.1")).status_code == 401
        assert (await fail(2, "198.51.100.1")).status_code == 401
        assert (await fail(3, "198.51.100.1")).status_code == 429
        assert (await fail(4, "198.51.100.2")).status_code == 401


async def test_admin_key_has_its_own_limit(server_factory: Any) -> None:
    srv = await server_factory(
        admin_api_key=ADMIN_KEY, rate_limit_requests="2/2 second", rate_limit_agents="5/2 second"
    )
    async with srv.client(headers={"X-API-Key": ADMIN_KEY}) as admin:
        for _ in range(5):  # more than the address may send
            assert (await admin.get("/api/v1/knowledge")).status_code == 200
        wait = assert_limited(await admin.get("/api/v1/knowledge"))
        await asyncio.sleep(wait + 0.1)
        assert (await admin.get("/api/v1/knowledge")).status_code == 200


async def test_made_up_credentials_are_charged_to_the_address(server_factory: Any) -> None:
    srv = await server_factory(rate_limit_requests="3/5 second")
    async with srv.client() as api:
        for n in range(3):
            res = await api.get("/api/v1/agents/me", headers={"Authorization": f"Bearer fake{n}"})
            assert res.status_code == 401
        assert_limited(await api.get("/api/v1/agents/me", headers={"Authorization": "Bearer x"}))


# -- sockets -----------------------------------------------------------------------------
async def customer(url: str) -> Recorder:
    return await Recorder("/", CUSTOMER_EVENTS).connect(url)


async def test_socket_events_per_connection_stay_connected(server_factory: Any) -> None:
    srv = await server_factory(rate_limit_socket_events="3/2 second")
    client = await customer(srv.url)
    try:
        for _ in range(4):
            await client.emit("join-chat", {"userId": "u1"})
        error = await client.wait_for("error")
        assert error["code"] == "RATE_LIMITED"
        assert error["message"]
        assert 1 <= error["retryAfter"] <= 2
        assert client.sio.connected  # refused, not dropped
        await asyncio.sleep(error["retryAfter"] + 0.1)
        seen = {joined["sessionId"] for joined in client.received["chat-joined"]}
        assert len(seen) == 3
        await client.emit("join-chat", {"userId": "u1"})
        await client.wait_for("chat-joined", lambda joined: joined["sessionId"] not in seen)
    finally:
        await client.close()


async def test_messages_count_as_socket_events_even_when_refused_by_validation(
    server_factory: Any,
) -> None:
    """send-message counts its event with the session's messages limit in one call; one the
    schema refuses still counts, and over the limit it is refused as rate-limited."""
    srv = await server_factory(rate_limit_socket_events="3/2 second")
    client = await customer(srv.url)
    try:
        await client.emit("join-chat", {"userId": "u1"})  # 1
        joined = await client.wait_for("chat-joined")
        await client.emit("send-message", {"sessionId": joined["sessionId"], "message": "hi"})  # 2
        await client.wait_for("message-received", lambda m: m.get("isBot"))
        await client.emit("send-message", {"sessionId": joined["sessionId"]})  # 3: no message
        invalid = await client.wait_for("error")
        assert invalid["code"] != "RATE_LIMITED"
        client.received["error"].clear()
        await client.emit("send-message", {"sessionId": joined["sessionId"]})  # 4: over
        refused = await client.wait_for("error")
        assert refused["code"] == "RATE_LIMITED" and refused["retryAfter"] >= 1
        assert client.sio.connected
    finally:
        await client.close()


async def test_socket_sessions_and_messages(server_factory: Any) -> None:
    srv = await server_factory(rate_limit_sessions="1/10 second", rate_limit_messages="1/10 second")
    client = await customer(srv.url)
    try:
        await client.emit("join-chat", {"userId": "u1"})
        joined = await client.wait_for("chat-joined")
        await client.emit("join-chat", {"userId": "u1"})  # a second new session
        error = await client.wait_for("error")
        assert error["code"] == "RATE_LIMITED"
        client.received["error"].clear()
        await client.emit("join-chat", {"sessionId": joined["sessionId"]})  # a rejoin is free
        await client.emit("send-message", {"sessionId": joined["sessionId"], "message": "hi"})
        await client.emit("send-message", {"sessionId": joined["sessionId"], "message": "hi"})
        error = await client.wait_for("error")
        assert error["code"] == "RATE_LIMITED"
        assert "messages" in error["message"]
        assert client.sio.connected
    finally:
        await client.close()


async def test_concurrent_sockets_per_address(server_factory: Any) -> None:
    srv = await server_factory(rate_limit_sockets=2)
    first, second = await customer(srv.url), await customer(srv.url)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await customer(srv.url)
        await first.close()
        await asyncio.sleep(0.3)  # the server sees the disconnect
        third = await customer(srv.url)
        await third.close()
    finally:
        await second.close()


async def test_agent_sockets_have_their_own_limit(server_factory: Any) -> None:
    """An agent's console counts against RATE_LIMIT_AGENTS, not the customers' limit."""
    srv = await server_factory(
        **desk_settings(rate_limit_agents="3/2 second", rate_limit_socket_events="1/10 second")
    )
    async with srv.client() as api:
        token = await login(api, ADMIN["email"], ADMIN["password"])
    console = await Recorder("/agents", AGENT_EVENTS).connect(srv.url, auth={"token": token})
    try:
        for _ in range(3):  # more than a customer's socket may send
            await console.emit("set-presence", {"presence": "online"})
        await console.emit("set-presence", {"presence": "away"})
        error = await console.wait_for("error")
        assert error["code"] == "RATE_LIMITED"
        assert 1 <= error["retryAfter"] <= 2
        assert console.sio.connected
    finally:
        await console.close()
