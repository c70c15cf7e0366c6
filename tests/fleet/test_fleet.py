"""Three instances behind nginx (deploy/nginx.conf, as `make fleet` runs it) on one Redis.

Customers and an agent come from different loopback addresses, so nginx spreads them: a
customer on one instance talks with the agent on another; one customer long-polls (pinned
to its instance by the address hash); a knowledge upload through nginx reaches every
instance. Then, with every conversation still talking, one instance is SIGKILLed and
another SIGTERMed: every socket reconnects through nginx to the survivor, rejoins and
carries on, and every message that got a 200 or an ack is in its transcript, in order."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.fleet import Fleet, start_fleet
from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, delete_prefix, server_env
from tests.fleet.clients import LiveClient, Talker, http_from, in_order, upstream_of

SMALL_KB = Path(__file__).with_name("kb.yaml")  # trains in a moment on every instance
CANDIDATES = [f"127.0.0.{n}" for n in range(10, 34)]


@pytest.fixture
async def fleet(tmp_path) -> AsyncIterator[Fleet]:
    prefix = f"test:fleet:{uuid.uuid4().hex}:"
    env = server_env(prefix) | {"SHUTDOWN_GRACE": "5", "KNOWLEDGE_BASE_PATH": str(SMALL_KB)}
    running = await start_fleet(env, 3, prefix_dir=tmp_path / "fleet")
    try:
        yield running
    finally:
        await running.stop()
        await delete_prefix(prefix)


def pick(where: dict[str, str], instance: str, taken: set[str]) -> str:
    ip = next(ip for ip, up in where.items() if up == instance and ip not in taken)
    taken.add(ip)
    return ip


async def test_fleet_behind_nginx_survives_a_kill_and_a_rolling_restart(fleet: Fleet):
    a, b, c = fleet.instances
    where = await upstream_of(CANDIDATES, fleet.url, fleet.access_log)
    assert {a.address, b.address, c.address} <= set(where.values()), where
    taken: set[str] = set()
    agent_ip, customer_ip = pick(where, b.address, taken), pick(where, a.address, taken)
    poller_ip, b_ip = pick(where, a.address, taken), pick(where, b.address, taken)
    rest_a_ip, rest_c_ip = pick(where, a.address, taken), pick(where, c.address, taken)

    agent_api = http_from(agent_ip, fleet.url)
    rest_a, rest_c = http_from(rest_a_ip, fleet.url), http_from(rest_c_ip, fleet.url)
    login = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    token = (await agent_api.post("/api/v1/agents/login", json=login)).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    console = LiveClient(agent_ip, "/agents")
    customer = LiveClient(customer_ip)
    poller = LiveClient(poller_ip, transports=["polling"])
    neighbour = LiveClient(b_ip)
    talkers: list[Talker] = []
    try:
        await console.open(fleet.url, {"token": token}, ("queue-updated",))
        await console.until(lambda: console.received["hello"], what="hello")
        for client in (customer, poller, neighbour):
            await client.open(fleet.url)

        # A customer on A, the agent on B: the escalation, the claim and both directions.
        sid = await customer.join("fleet-customer")
        await customer.sio.call("send-message", {"sessionId": sid, "message": "urgent, a person"})
        await console.until(
            lambda: any(d["item"]["sessionId"] == sid for d in console.received["queue-updated"]),
            what="the escalation on B",
        )
        claimed = await agent_api.post(f"/api/v1/agents/conversations/{sid}/claim", headers=bearer)
        assert claimed.status_code == 200, claimed.text

        # A knowledge upload through nginx is swapped in on every instance.
        entry = {"name": "fleet_parking", "answer": "Parking is free.", "questions": ["parking?"]}
        res = await agent_api.post("/api/v1/knowledge/entries", json=entry, headers=bearer)
        assert res.status_code == 202, res.text
        version = res.json().get("pending") or res.json()["version"]
        for instance in fleet.instances:
            async with http_from("127.0.0.1", instance.url) as direct:
                for _ in range(200):
                    got = (await direct.get("/api/v1/knowledge", headers=bearer)).json()
                    if got["version"] == version:
                        break
                    await asyncio.sleep(0.1)
                assert got["version"] == version, (instance.url, got)

        # Every conversation keeps talking from here on.
        def socket_sender(client: LiveClient, session: str):
            async def send(text: str) -> None:
                await client.call("send-message", {"sessionId": session, "message": text})

            return send

        def rest_sender(api, session: str):
            async def send(text: str) -> None:
                res = await api.post(
                    "/api/v1/chat/message", json={"sessionId": session, "message": text}
                )
                assert res.status_code == 200, res.text

            return send

        async def agent_send(text: str) -> None:
            res = await agent_api.post(
                f"/api/v1/agents/conversations/{sid}/messages",
                json={"message": text},
                headers=bearer,
            )
            assert res.status_code == 200, res.text

        sessions = {
            "customer": sid,
            "poller": await poller.join("fleet-poller"),
            "neighbour": await neighbour.join("fleet-neighbour"),
        }
        for api, name in ((rest_a, "rest-a"), (rest_c, "rest-c")):
            res = await api.post("/api/v1/chat/session", json={"userId": name, "metadata": {}})
            sessions[name] = res.json()["sessionId"]
        senders = {
            "customer": socket_sender(customer, sid),
            "poller": socket_sender(poller, sessions["poller"]),
            "neighbour": socket_sender(neighbour, sessions["neighbour"]),
            "rest-a": rest_sender(rest_a, sessions["rest-a"]),
            "rest-c": rest_sender(rest_c, sessions["rest-c"]),
            "agent": agent_send,
        }
        for name, send in senders.items():
            talkers.append(Talker(name))
            talkers[-1].start(send)
        await asyncio.gather(*(t.acks(2) for t in talkers))

        # A dies mid-conversation; its sockets come back through nginx elsewhere.
        a.signal(signal.SIGKILL)
        await a.process.wait()
        for client in (customer, poller):
            await client.until(lambda c=client: len(c.received["chat-joined"]) >= 2, 60, "rejoin")
        await asyncio.gather(*(t.acks(2) for t in talkers))

        # B restarts gracefully: its sockets (the agent's among them) move to C.
        hellos = len(console.received["hello"])
        b.signal(signal.SIGTERM)
        assert await asyncio.wait_for(b.process.wait(), 30) in (0, -signal.SIGTERM)
        await neighbour.until(lambda: len(neighbour.received["chat-joined"]) >= 2, 60, "rejoin")
        await console.until(lambda: len(console.received["hello"]) > hellos, 60, "agent back")
        await asyncio.gather(*(t.acks(2) for t in talkers))
        # The agent, now on C, still hears the customer (also on C now).
        last = talkers[0].acked[-1]
        await console.until(
            lambda: any(d.get("message") == last for d in console.received["message-received"]),
            what="the customer's newest message at the console",
        )
    finally:
        await asyncio.gather(*(t.stop() for t in talkers))
        for client in (console, customer, poller, neighbour):
            await client.close()
        for api in (rest_a, rest_c):
            await api.aclose()

    # Nothing acknowledged is missing, and nothing is out of order.
    for talker in talkers:
        session = sid if talker.name == "agent" else sessions[talker.name]
        async with http_from("127.0.0.1", fleet.url) as api:
            history = (await api.get(f"/api/v1/chat/history/{session}")).json()["history"]
        texts = [m["content"] for m in history]
        assert in_order(talker.acked, texts), (talker.name, talker.acked, texts)
    await agent_api.aclose()
    for client in (customer, poller, neighbour):
        assert not client.received["error"], client.received["error"]
