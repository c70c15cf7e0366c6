"""When nobody can answer: the honest word, the e-mail offer, tickets, the handoff timeout,
and the bot helping meanwhile (OFF_HOURS_BOT). Real server, real Redis, real sockets."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

from tests.agents.conftest import ADMIN, bearer, desk_settings, login
from tests.conftest import HEALTH_DETAIL, new_session


def closed_now() -> tuple[str, int]:
    """Opening hours (every day, one hour) that exclude the present, and their start hour."""
    start = (datetime.now(UTC) + timedelta(hours=3)).hour
    end = "24:00" if start == 23 else f"{start + 1:02d}:00"
    return f"Mon-Sun {start:02d}:00-{end}", start


async def test_closed_hours_say_when_the_team_is_back_and_take_an_e_mail(server_factory, consoles):
    _, customer = consoles
    hours, start = closed_now()
    srv = await server_factory(**desk_settings(business_hours=hours, off_hours_bot=True))
    async with srv.client() as api:
        health = (await api.get("/api/v1/health", headers=HEALTH_DETAIL)).json()["businessHours"]
        assert health["configured"] and not health["openNow"]
        sid = await new_session(api)
        page = await customer(srv.url)
        await page.emit("join-chat", {"sessionId": sid})
        await page.wait_for("chat-joined")
        body = (
            await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "urgent!"})
        ).json()
        assert body["contactRequested"] is True and body["status"] == "escalated"
        assert f"{start:02d}:00 (UTC time)" in body["response"] and "e-mail" in body["response"]
        assert body["nextOpening"].startswith(health["nextOpening"][:13])
        offer = await page.wait_for("contact-requested")
        assert offer["nextOpening"] == body["nextOpening"] and offer["message"] in body["response"]
        # the bot still answers knowledge questions meanwhile, without a second handoff
        meanwhile = (
            await api.post(
                "/api/v1/chat/message",
                json={"sessionId": sid, "message": "How long does shipping take?"},
            )
        ).json()
        assert meanwhile["provider"] == "local" and "escalation" not in meanwhile
        # a bad address is a 400 and changes nothing; a good one makes one ticket
        url = f"/api/v1/chat/session/{sid}/contact"
        assert (await api.post(url, json={"email": "not-an-address"})).status_code == 400
        saved = (await api.post(url, json={"email": "jo@example.com"})).json()
        assert saved["created"] is True
        again = (await api.post(url, json={"email": "jo@example.org"})).json()
        assert again == {**saved, "created": False}


async def test_tickets_reach_agents_and_export_as_json_and_csv(desk, consoles):
    agent, customer = consoles
    # an agent who is online but away does not count as someone who can answer
    console = await agent(desk.server.url, desk.admin)
    await console.wait_for("hello")
    await console.emit("set-presence", {"presence": "away"})
    await console.wait_for("presence-updated", lambda d: d["agents"][0]["presence"] == "away")
    page = await customer(desk.server.url)
    await page.emit("join-chat", {"userId": "=cmd|' /C calc'!A0"})
    sid = (await page.wait_for("chat-joined"))["sessionId"]
    await page.emit("send-message", {"sessionId": sid, "message": "I want a refund, urgent"})
    await page.wait_for("contact-requested")
    await page.emit("leave-contact", {"sessionId": sid, "email": "bad address"})
    assert (await page.wait_for("error"))["code"] == "INVALID_PAYLOAD"
    await page.emit("leave-contact", {"sessionId": sid, "email": "sam@example.com"})
    saved = await page.wait_for("contact-saved")
    created = await console.wait_for("ticket-created")
    assert created["ticket"]["id"] == saved["ticketId"]
    assert created["ticket"]["email"] == "sam@example.com"
    listed = (await desk.api.get("/api/v1/agents/tickets", headers=bearer(desk.admin))).json()
    assert [t["id"] for t in listed["tickets"]] == [saved["ticketId"]]
    one = await desk.api.get(
        f"/api/v1/agents/tickets/{saved['ticketId']}", headers=bearer(desk.admin)
    )
    transcript = one.json()["ticket"]["transcript"]
    assert transcript[0]["content"] == "I want a refund, urgent"
    exported = await desk.api.get("/api/v1/agents/tickets/export", headers=bearer(desk.admin))
    assert exported.json()["tickets"][0]["transcript"] == transcript
    as_csv = await desk.api.get(
        "/api/v1/agents/tickets/export?format=csv", headers=bearer(desk.admin)
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert rows[0]["email"] == "sam@example.com" and rows[0]["userId"].startswith(
        "'="
    )  # no formula
    closed = await desk.api.post(
        f"/api/v1/agents/tickets/{saved['ticketId']}/close", headers=bearer(desk.admin)
    )
    assert closed.json()["ticket"]["status"] == "closed"
    assert (
        await desk.api.get("/api/v1/agents/tickets/nope", headers=bearer(desk.admin))
    ).status_code == 404
    assert (await desk.api.get("/api/v1/agents/tickets")).status_code == 401


async def test_an_unclaimed_customer_is_offered_e_mail_and_agents_are_reminded(
    server_factory, consoles
):
    agent, customer = consoles
    srv = await server_factory(**desk_settings(handoff_timeout=1))
    async with srv.client() as api:
        token = await login(api, ADMIN["email"], ADMIN["password"])
        console = await agent(srv.url, token)  # online, so the first handoff promises a person
        await console.wait_for("hello")
        page = await customer(srv.url)
        await page.emit("join-chat", {"userId": "waiting"})
        sid = (await page.wait_for("chat-joined"))["sessionId"]
        await page.emit("send-message", {"sessionId": sid, "message": "urgent: talk to me"})
        first = await page.wait_for("message-received", lambda d: d.get("sender") == "bot")
        assert "our team" in first["message"] and "e-mail" not in first["message"]
        assert not page.received["contact-requested"]
        reminder = await console.wait_for("queue-reminder", timeout=15)
        assert reminder["sessionId"] == sid and reminder["waitingSeconds"] >= 1
        offer = await page.wait_for("contact-requested")
        assert "e-mail" in offer["message"]
        await asyncio.sleep(1.5)  # offered once per episode, however long they wait
        assert len(page.received["contact-requested"]) == 1


async def test_without_the_off_hours_bot_a_waiting_customer_only_gets_notices(desk):
    sid = await desk.escalated_session()
    first = await desk.say(sid, "How long does shipping take?")
    assert first["provider"] == "none" and first["status"] == "escalated"


async def test_the_agent_side_is_unaffected_when_someone_is_there(desk, consoles):
    agent, _ = consoles
    console = await agent(desk.server.url, desk.admin)
    await console.wait_for("hello")
    sid = await new_session(desk.api)
    body = await desk.say(sid, "urgent please")
    assert "member of our team" in body["response"] and "contactRequested" not in body
