"""Routing to an online agent: round robin and least busy with capacities, teams, offers
that are declined or time out, and never two offers for one conversation."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from services.container import Container
from services.routing import Router
from tests.agents.conftest import ADMIN, bearer, desk_settings, login
from tests.conftest import make_settings, new_session


async def team_desk(server_factory, consoles, **settings):
    """A server with routing on and three online agents (ids sorted: their names)."""
    agent, _ = consoles
    srv = await server_factory(**desk_settings(**settings))
    api = srv.client()
    admin = await login(api, ADMIN["email"], ADMIN["password"])
    people = {}
    for name in ("Ann", "Ben", "Cy"):
        body = {"email": f"{name.lower()}@example.com", "name": name, "password": "agent-pass-1"}
        created = await api.post("/api/v1/agents", json=body, headers=bearer(admin))
        agent_id = created.json()["agent"]["id"]
        token = await login(api, body["email"], body["password"])
        console = await agent(srv.url, token)
        await console.wait_for("hello")
        people[name] = {"id": agent_id, "token": token, "console": console}
    return srv, api, admin, people


async def escalate(api) -> str:
    sid = await new_session(api)
    res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "urgent help"})
    assert res.json()["status"] == "escalated"
    return sid


async def offered_to(api, admin, sid):
    res = await api.get(f"/api/v1/agents/conversations/{sid}", headers=bearer(admin))
    who = res.json()["conversation"]["offeredTo"]
    return who["name"] if who else None


async def test_round_robin_offers_in_turn_within_capacity(server_factory, consoles):
    _, api, admin, people = await team_desk(server_factory, consoles, routing="round_robin")
    async with contextlib.aclosing(api):
        for name, capacity in (("Ann", 1), ("Ben", 2), ("Cy", 2)):
            res = await api.post(
                f"/api/v1/agents/{people[name]['id']}/routing",
                json={"capacity": capacity},
                headers=bearer(admin),
            )
            assert res.json()["agent"]["routing"]["capacity"] == capacity
        taken = []
        for _ in range(5):
            sid = await escalate(api)
            name = await offered_to(api, admin, sid)
            assert name is not None
            offer = await people[name]["console"].wait_for(
                "offer", lambda d, s=sid: d["sessionId"] == s
            )
            assert offer["timeoutSeconds"] == 30
            claim = await api.post(
                f"/api/v1/agents/conversations/{sid}/claim", headers=bearer(people[name]["token"])
            )
            assert claim.status_code == 200 and claim.json()["conversation"]["offeredTo"] is None
            taken.append(name)
        assert Counter(taken) == {"Ann": 1, "Ben": 2, "Cy": 2}  # everyone, up to capacity
        assert taken[0] != taken[1]  # in turn, not the same agent twice running
        full = await escalate(api)
        assert await offered_to(api, admin, full) is None  # everyone is at capacity: it waits
        queue = (
            await api.get("/api/v1/agents/queue?status=escalated", headers=bearer(admin))
        ).json()
        assert [c["sessionId"] for c in queue["conversations"]] == [full]


async def test_a_declined_offer_moves_on_and_ends_in_the_queue(server_factory, consoles):
    _, api, admin, people = await team_desk(server_factory, consoles, routing="least_busy")
    async with contextlib.aclosing(api):
        sid = await escalate(api)
        seen = []
        for _ in range(3):
            name = await offered_to(api, admin, sid)
            seen.append(name)
            other = next(p for n, p in people.items() if n != name)
            refused = await api.post(
                f"/api/v1/agents/conversations/{sid}/decline", headers=bearer(other["token"])
            )
            assert refused.status_code == 403  # only the offeree can decline
            res = await api.post(
                f"/api/v1/agents/conversations/{sid}/decline", headers=bearer(people[name]["token"])
            )
            assert res.status_code == 200
            await people[name]["console"].wait_for("offer-withdrawn")
        assert sorted(seen) == ["Ann", "Ben", "Cy"]  # each once
        assert await offered_to(api, admin, sid) is None  # all declined: it waits for a claim
        claim = await api.post(
            f"/api/v1/agents/conversations/{sid}/claim", headers=bearer(people["Ann"]["token"])
        )
        assert claim.status_code == 200


async def test_an_offer_not_accepted_in_time_moves_to_the_next_agent(server_factory, consoles):
    _, api, admin, people = await team_desk(
        server_factory, consoles, routing="round_robin", offer_timeout=1
    )
    async with contextlib.aclosing(api):
        sid = await escalate(api)
        first = await offered_to(api, admin, sid)
        gone = await people[first]["console"].wait_for("offer-withdrawn", timeout=15)
        assert gone == {"sessionId": sid, "reason": "timeout"}
        for _ in range(50):
            second = await offered_to(api, admin, sid)
            if second not in (None, first):
                break
            await asyncio.sleep(0.1)
        assert second not in (None, first)
        offer = await people[second]["console"].wait_for("offer")
        assert offer["sessionId"] == sid


async def test_routing_stays_within_the_conversations_team(server_factory, consoles):
    _, api, admin, people = await team_desk(
        server_factory, consoles, routing="round_robin", routing_teams=["refund=billing"]
    )
    async with contextlib.aclosing(api):
        await api.post(
            f"/api/v1/agents/{people['Cy']['id']}/routing",
            json={"teams": ["Billing"]},
            headers=bearer(admin),
        )
        for _ in range(3):
            sid = await new_session(api)
            await api.post(
                "/api/v1/chat/message", json={"sessionId": sid, "message": "I want a refund"}
            )
            item = (
                await api.get(f"/api/v1/agents/conversations/{sid}", headers=bearer(admin))
            ).json()["conversation"]
            assert item["team"] == "billing" and item["offeredTo"]["name"] == "Cy"
            await api.post(
                f"/api/v1/agents/conversations/{sid}/decline", headers=bearer(people["Cy"]["token"])
            )


async def test_two_instances_never_offer_one_conversation_twice(redis):
    settings = make_settings(**desk_settings(routing="round_robin"))
    one, two = Container(settings), Container(settings)
    await one.start()
    await two.start()
    try:
        online = [{"id": f"agent{i}", "name": f"A{i}", "presence": "online"} for i in range(5)]

        class Everyone:
            async def online(self) -> list[dict[str, str]]:
                return online

        routers = [
            Router(
                c.store.redis,
                settings.redis_key_prefix,
                sessions=c.chat.sessions,
                notifier=c.chat.notifier,
                directory=Everyone(),
                mode="round_robin",
            )
            for c in (one, two)
        ]
        session = await one.chat.start_session(user_id="u")
        await one.conversations.escalate(session, [{"rule": "keyword", "detail": "x"}], "x")
        results = await asyncio.gather(*(routers[i % 2].route(session.id) for i in range(20)))
        assert len([r for r in results if r is not None]) == 1
    finally:
        await one.aclose()
        await two.aclose()
