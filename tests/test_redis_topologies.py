"""Redis Cluster and Sentinel: hash slots of the key layout, the REDIS_URL forms, the 0.x key
migration, and a Sentinel failover in the middle of a conversation.

(The suite's Redis tests also run on a 3-master cluster with TEST_REDIS=cluster: see
tests/conftest.py and `make test`.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from services import keys
from services.agents.model import Keys
from services.assist.proposals import Proposals
from services.container import Container
from services.migrate_keys import migrate, new_name
from services.notify.webhooks import Keys as WebhookKeys
from services.redis_client import parse_location
from tests.conftest import delete_prefix, make_settings, on_cluster, start_server, unique_prefix
from tests.redis_cluster import SentinelSetup, start_sentinel
from tests.test_sockets import Client, join


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def test_the_redis_url_forms() -> None:
    one = parse_location("redis://u:p%40ss@db:6380/2")
    assert (one.kind, one.hosts, one.username, one.password, one.db) == (
        "single",
        (("db", 6380),),
        "u",
        "p@ss",
        2,
    )
    nodes = parse_location("redis://:pw@n1:7000,n2:7001,redis://n3:7002", cluster=True)
    assert nodes.kind == "cluster" and nodes.hosts == (("n1", 7000), ("n2", 7001), ("n3", 7002))
    assert nodes.password == "pw"
    sentinel = parse_location("redis+sentinel://s1:26379,s2:26380/3/orders")
    assert (sentinel.kind, sentinel.hosts, sentinel.db, sentinel.service) == (
        "sentinel",
        (("s1", 26379), ("s2", 26380)),
        3,
        "orders",
    )
    assert parse_location("rediss+sentinel://s1/0/mymaster").tls
    with pytest.raises(ValueError, match="REDIS_CLUSTER"):
        parse_location("redis://a:1,b:2")


def test_keys_that_one_script_or_transaction_touches_share_a_slot() -> None:
    p = "supportbot:"
    for sid in ("abc", "Zy-9_x", "x" * 32):
        session = {keys.session_key(p, sid)} | {
            keys.session_part(p, sid, part) for part in ("messages", "notice", "declined")
        }
        assert len({slot(k) for k in session}) == 1
    agents = Keys(p)
    agent_keys = [
        agents.agent("a1"),
        agents.tokens("a1"),
        agents.by_email,
        agents.token("jti"),
        agents.fail_account("x@example.com"),
        agents.fail_ip("10.0.0.1"),
        agents.presence,
        agents.sockets("a1"),
    ]
    assert len({slot(k) for k in agent_keys}) == 1
    assert (
        len({slot(keys.ticket_key(p, t)) for t in ("t1", "t2")} | {slot(keys.ticket_index(p))}) == 1
    )
    proposals = Proposals(Redis(), p, sessions=None, knowledge=None)  # type: ignore[arg-type]
    assert slot(proposals._key("p1")) == slot(proposals._index)
    hooks = WebhookKeys(p)
    hook_keys = [hooks.stream, hooks.retry, hooks.log, hooks.event("e"), hooks.delivery("d")]
    assert len({slot(k) for k in hook_keys}) == 1
    # sessions spread over the cluster: different sessions, different slots
    assert len({slot(keys.session_key(p, f"s{i}")) for i in range(50)}) > 40


def test_old_names_map_to_tagged_ones() -> None:
    p = "sb:"
    assert new_name(p, "sb:session:abc") == "sb:session:{abc}"
    assert new_name(p, "sb:session:abc:messages") == "sb:session:{abc}:messages"
    assert new_name(p, "sb:agent:a1:tokens") == "sb:{agents}:agent:a1:tokens"
    assert new_name(p, "sb:presence") == "sb:{agents}:presence"
    assert new_name(p, "sb:tickets") == "sb:{tickets}:index"
    assert new_name(p, "sb:ticket:t1") == "sb:{tickets}:ticket:t1"
    assert new_name(p, "sb:kb:version:v1") == "sb:{kb}:version:v1"
    assert new_name(p, "sb:webhooks:stream") == "sb:{webhooks}:stream"
    assert new_name(p, "sb:proposal:p1") == "sb:{proposals}:proposal:p1"
    assert new_name(p, "sb:proposals") == "sb:{proposals}:index"
    for unchanged in ("sb:sessions:active", "sb:queue", "sb:session:{abc}", "sb:user:ff", "x:y"):
        assert new_name(p, unchanged) is None


def old_name(prefix: str, key: str) -> str:
    """The 0.x name of a key of today's layout (the reverse of services.migrate_keys)."""
    name = key[len(prefix) :]
    for tag in (keys.AGENTS,):
        if name.startswith(tag):
            return prefix + name[len(tag) :]
    if name == keys.TICKETS + "index":
        return prefix + "tickets"
    for tag, old in ((keys.TICKETS, ""), (keys.KNOWLEDGE, "kb:"), (keys.WEBHOOKS, "webhooks:")):
        if name.startswith(tag):
            return prefix + old + name[len(tag) :]
    parsed = keys.parse_session_key(prefix, key)
    if parsed is not None:
        return f"{prefix}session:{parsed[0]}" + (f":{parsed[1]}" if parsed[1] else "")
    return key


@pytest.mark.skipif(on_cluster(), reason="RENAME into the 0.x layout needs one server")
async def test_the_migration_moves_0x_data_and_the_service_reads_it(redis: Redis) -> None:
    settings = make_settings(redis_key_prefix=unique_prefix("mig"))
    prefix = settings.redis_key_prefix
    container = Container(settings)
    await container.start()
    try:
        assert container.chat is not None and container.agents is not None
        session = await container.chat.start_session(user_id="u1")
        await container.chat.sessions.append(
            session.id, {"role": "user", "content": "hello", "timestamp": "t"}
        )
        await container.agents.create("ann@example.com", "Ann", "a good password")
        today = sorted([k.decode() async for k in redis.scan_iter(match=f"{prefix}*")])
        for key in today:  # back to how 0.x stored it
            if old_name(prefix, key) != key:
                await redis.rename(key, old_name(prefix, key))
        assert await container.chat.sessions.store.get(session.id) is None
        moved = await migrate(redis, prefix)
        assert moved.conflicts == 0 and moved.moved == sum(old_name(prefix, k) != k for k in today)
        assert sorted([k.decode() async for k in redis.scan_iter(match=f"{prefix}*")]) == today
        assert (await migrate(redis, prefix)).moved == 0  # a second run finds nothing
        transcript = await container.chat.sessions.transcript(session.id)
        assert [e["content"] for e in transcript] == ["hello"]
        await container.agents.login("ann@example.com", "a good password", "10.0.0.1")
    finally:
        await container.aclose()
        await delete_prefix(redis, prefix)


@pytest.fixture
async def sentinel() -> AsyncIterator[SentinelSetup]:
    setup = await asyncio.to_thread(start_sentinel)
    yield setup
    await asyncio.to_thread(setup.stop)


async def test_a_sentinel_failover_during_a_conversation_loses_nothing_accepted(
    sentinel: SentinelSetup,
) -> None:
    srv = await start_server(make_settings(redis_url=sentinel.url, redis_cluster=False))
    customer = await Client().connect(srv.url)
    accepted: list[str] = []

    async def say(api, sid: str, text: str) -> None:
        for _ in range(50):  # while the old master steps down a send may get 503: resend
            res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": text})
            if res.status_code == 200:
                accepted.append(text)
                return
            assert res.status_code == 503, res.text
            await asyncio.sleep(0.1)
        raise AssertionError(f"{text!r} was never accepted")

    try:
        sid = (await join(customer))["sessionId"]
        async with srv.client() as api:
            for i in range(3):
                await say(api, sid, f"before the failover {i}: how long does shipping take?")
            old = sentinel.master_port()
            new = await asyncio.to_thread(sentinel.failover)
            assert new != old
            for i in range(3):
                await say(api, sid, f"after the failover {i}: can I return an item?")
            history = (await api.get(f"/api/v1/chat/history/{sid}")).json()["history"]
        said = [e["content"] for e in history if e["role"] == "user"]
        assert said == accepted and len(said) == 6
        assert sum(e["role"] == "assistant" for e in history) >= 6  # each one was answered
        # the customer's socket still gets the conversation's events through the new master
        await customer.wait_for("message-received", 12)
    finally:
        await customer.close()
        await srv.stop()
