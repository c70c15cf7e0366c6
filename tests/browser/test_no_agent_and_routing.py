"""When nobody can answer live (the e-mail form, a ticket, the on-call mail, the console's
Tickets view and export) and routing (an offer to one agent at a time), in a real browser
against real servers started with the settings each test needs. A real SMTP server (aiosmtpd)
receives the on-call mail."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.async_api import Page, WebSocketRoute, expect

from services.tickets import _cell as csv_cell
from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer, SocketTap, wait_for_js
from tests.browser.test_agent_console import (
    ALERT_SPIES,
    api_token,
    ask,
    axe_violations,
    joined,
    open_console,
    queue_item,
    sign_in,
)
from tests.conftest import free_port

pytestmark = pytest.mark.browser

URGENT = "This is urgent: my parcel never arrived"
NOBODY = "Nobody from our team is available right now"
BAD_FORMAT = "does not look like an e-mail address"


class Mailbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    async def wait_for(self, event: str, timeout: float = 20) -> tuple[list[str], Message]:
        deadline = time.monotonic() + timeout
        while True:
            for rcpt, msg in self.messages:
                if msg["X-Supportbot-Event"] == event:
                    return rcpt, msg
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no {event} mail; got {[m['Subject'] for _, m in self.messages]}"
                )
            await asyncio.sleep(0.1)


class RecordingTap(SocketTap):
    """A SocketTap that also keeps every frame the page sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def _route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if isinstance(message, str):
                self.sent.append(message)
                if any(message.startswith(f'42["{e}"') for e in self.hold):
                    self.held.append(message)
                    return
            server.send(message)

        ws.on_message(from_page)
        self.routes.append(ws)

    def events(self, name: str) -> list[dict]:
        prefix = f'42["{name}",'
        return [json.loads(m[2:])[1] for m in self.sent if m.startswith(prefix)]


async def customer_page(new_page, server: LiveServer, tap: SocketTap | None = None, **context):
    page = await new_page(900, 800, goto=False, **context)
    if tap is not None:
        await tap.install(page)
    await page.goto(server.url + "/")
    return page


# --- nobody online: the e-mail form, the ticket, the mail, the Tickets view ---------------------


async def test_nobody_online_email_form_ticket_mail_and_the_tickets_view(server_with, new_page):
    mailbox = Mailbox()
    port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        srv = await server_with(
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(port),
            SMTP_TLS="none",
            SMTP_FROM="Support Bot <bot@example.com>",
            ONCALL_EMAIL="oncall@example.com",
            SMTP_RETRY_SCHEDULE="0.5s,0.5s",
        )
        tap = RecordingTap()
        customer = await customer_page(
            new_page, srv, tap, timezone_id="America/New_York", locale="en-US"
        )
        session = await joined(customer)
        # A new session carries the customer's zone, so server texts can name it.
        assert tap.events("join-chat")[0]["metadata"] == {"timezone": "America/New_York"}

        await ask(customer, URGENT)
        form = customer.locator("#contact")
        await expect(form).to_be_visible()
        await expect(customer.locator(".msg--assistant").last).to_contain_text(NOBODY)
        await expect(customer.locator("#contact-help")).to_contain_text(NOBODY)
        await expect(customer.locator("#escalation")).to_contain_text(
            "Nobody from our team can answer live right now."
        )
        await expect(customer.locator("#escalation")).not_to_contain_text("will take over")
        await expect(customer.locator("#contact-next")).to_be_hidden()  # open hours: no opening
        email = customer.get_by_role("textbox", name="Your e-mail address")
        assert await email.get_attribute("type") == "email"
        assert await axe_violations(customer) == []
        await customer.screenshot(path="/tmp/supportbot-contact-form.png")

        # Not an address at all: the page says so and sends nothing.
        await email.fill("not an address")
        await customer.click("#contact-submit")
        error = customer.locator("#contact-error")
        await expect(error).to_contain_text(BAD_FORMAT)
        await expect(email).to_have_attribute("aria-invalid", "true")
        await expect(email).to_be_focused()
        assert tap.events("leave-contact") == []
        # The browser accepts it, the server does not (no dot in the domain): INVALID_PAYLOAD.
        await email.fill("someone@example")
        await expect(error).to_be_hidden()
        await customer.click("#contact-submit")
        await expect(error).to_contain_text(BAD_FORMAT)
        assert tap.events("leave-contact") == [{"sessionId": session, "email": "someone@example"}]
        await expect(customer.locator("#contact-submit")).to_be_enabled()
        assert await axe_violations(customer) == []
        await customer.screenshot(path="/tmp/supportbot-contact-error.png")

        await email.fill("cust@example.com")
        await email.press("Enter")
        thanks = "Thanks — we'll reply to you at cust@example.com."
        await expect(customer.locator(".msg--system").last).to_have_text(thanks)
        await expect(form).to_be_hidden()
        await expect(customer.locator("#escalation")).to_contain_text(
            "We'll answer you by e-mail at cust@example.com"
        )
        await expect(customer.locator("#message")).to_be_focused()
        await customer.screenshot(path="/tmp/supportbot-contact-thanks.png")

        # The on-call address got the ticket.
        rcpt, mail = await mailbox.wait_for("ticket.created")
        assert rcpt == ["oncall@example.com"]
        assert "cust@example.com" in mail["Subject"]
        body = mail.get_payload(decode=True).decode()
        assert "Reply to: cust@example.com" in body and URGENT in body

        # An admin signs in later: the ticket is in the Tickets view with the transcript.
        console = await open_console(new_page, srv)
        await sign_in(console)
        await expect(console.locator("#tickets-open")).to_have_text("1")
        await console.click("#view-tickets")
        await expect(console.locator("#view-tickets")).to_have_attribute("aria-pressed", "true")
        await expect(console.locator("#tickets-title")).to_be_focused()
        row = console.locator("#tickets [data-ticket-id]")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("cust@example.com")
        await expect(row).to_contain_text("Keyword “urgent”")
        await row.click()
        await expect(console.locator("#ticket-title")).to_have_text("Ticket from cust@example.com")
        transcript = console.locator("#ticket-transcript")
        await expect(transcript.locator(".entry--customer")).to_contain_text(URGENT)
        await expect(transcript.locator(".entry--bot").first).to_contain_text(NOBODY)
        reply = await console.locator("#ticket-reply").get_attribute("href")
        assert reply and reply.startswith("mailto:cust@example.com?subject=")
        await expect(console.locator("#ticket-reasons")).to_contain_text("Keyword “urgent”")
        assert await axe_violations(console) == []
        await console.screenshot(path="/tmp/supportbot-tickets.png")

        # Export: fetched with the token, saved as a file.
        async with console.expect_download() as info:
            await console.click("#export-csv")
        download = await info.value
        assert download.suggested_filename == "tickets.csv"
        text = await asyncio.to_thread(Path(await download.path()).read_text)
        rows = list(csv.DictReader(io.StringIO(text)))
        # a session id starting with "-" (1 in 64) is written formula-safe, with a leading '
        assert [(r["email"], r["sessionId"], r["status"]) for r in rows] == [
            ("cust@example.com", csv_cell(session), "open")
        ]
        async with console.expect_download() as info:
            await console.click("#export-json")
        exported = json.loads(
            await asyncio.to_thread(Path(await (await info.value).path()).read_text)
        )
        assert exported["tickets"][0]["transcript"][0]["content"] == URGENT

        # Answered: off the open list.
        await console.click("#ticket-close")
        await expect(console.locator("#ticket-status")).to_have_text("Answered")
        await expect(console.locator("#tickets-open")).to_have_text("0")
        await expect(row).to_have_count(0)
        await console.click(".tfilter[data-status=closed]")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("Answered")
    finally:
        smtp.stop()


async def test_a_new_ticket_appears_live_in_the_tickets_view(new_page, live_server):
    console = await open_console(new_page, live_server)
    await console.add_init_script(ALERT_SPIES)
    await console.reload()
    await sign_in(console)
    await console.click("#alerts-toggle")
    await console.click("#view-tickets")
    await expect(console.locator("#tickets-title")).to_be_focused()
    before = int(await console.locator("#tickets-open").text_content() or "0")
    # The only agent steps away, so a customer who escalates is offered e-mail, and leaves an
    # address over REST while the console watches.
    await console.select_option("#presence", "away")
    async with httpx.AsyncClient(base_url=live_server.url + "/api/v1", timeout=10) as client:
        for _ in range(50):  # until the server has the agent away
            res = await client.post("/chat/session", json={"userId": "live-ticket"})
            sid = res.json()["sessionId"]
            res = await client.post(
                "/chat/message", json={"sessionId": sid, "message": "This is urgent"}
            )
            if res.json().get("contactRequested"):
                break
            await asyncio.sleep(0.1)
        assert res.json().get("contactRequested"), res.text
        res = await client.post(f"/chat/session/{sid}/contact", json={"email": "live@example.com"})
        assert res.status_code in (200, 201), res.text
    row = console.locator("#tickets [data-ticket-id]").first  # newest first
    await expect(row).to_contain_text("live@example.com")
    await expect(console.locator("#tickets-open")).to_have_text(str(before + 1))
    await wait_for_js(console, "window.__notes.some(n => n.title === 'New ticket')")


# --- the e-mail form: the next opening in the customer's zone, REST when the socket is silent ----


async def test_the_next_opening_is_shown_in_the_customers_zone_and_rest_takes_over(
    new_page, live_server
):
    tap = RecordingTap()
    page = await customer_page(new_page, live_server, tap, timezone_id="Asia/Tokyo", locale="en-GB")
    session = await joined(page)
    assert tap.events("join-chat")[0]["metadata"] == {"timezone": "Asia/Tokyo"}
    tap.hold.add("leave-contact")
    posted = []

    async def contact(route):
        posted.append(route.request.post_data_json)
        await route.fulfill(
            status=201, json={"success": True, "ticketId": "t-123456789", "created": True}
        )

    await page.route(f"**/api/v1/chat/session/{session}/contact", contact)
    tap.emit(
        "contact-requested",
        {
            "sessionId": session,
            "episode": 1,
            "message": "Our team is away right now and back on Monday at 17:00 (Asia/Tokyo time).",
            # 08:00 UTC is 17:00 in Tokyo
            "nextOpening": "2030-01-07T08:00:00+00:00",
        },
    )
    await expect(page.locator("#contact")).to_be_visible()
    next_opening = page.locator("#contact-next")
    await expect(next_opening).to_contain_text("Monday")
    await expect(next_opening).to_contain_text("7 January")
    await expect(next_opening).to_contain_text("17:00")
    await expect(next_opening).not_to_contain_text("08:00")
    await page.fill("#contact-email", "late@example.com")
    await page.click("#contact-submit")
    await expect(page.locator("#contact-submit")).to_be_disabled()
    await expect(page.locator(".msg--system").last).to_have_text(
        "Thanks — we'll reply to you at late@example.com.", timeout=10000
    )
    assert tap.events("leave-contact") == [{"sessionId": session, "email": "late@example.com"}]
    assert len(tap.held) == 1  # the socket never carried it
    assert posted == [{"email": "late@example.com"}]


# --- routing: an offer to one agent at a time -----------------------------------------------------


async def routed_agent(server: LiveServer, admin: str, name: str) -> tuple[str, str]:
    """A new agent in the delivery team; e-mail and password."""
    email, password = f"{name.lower()}@supportbot.test", f"{name}-password-123"
    async with httpx.AsyncClient(
        base_url=server.url + "/api/v1", timeout=10, headers={"Authorization": f"Bearer {admin}"}
    ) as client:
        res = await client.post(
            "/agents", json={"email": email, "name": name, "password": password, "role": "agent"}
        )
        res.raise_for_status()
        agent_id = res.json()["agent"]["id"]
        res = await client.post(
            f"/agents/{agent_id}/routing", json={"capacity": 3, "teams": ["delivery"]}
        )
        res.raise_for_status()
    return email, password


async def offers_in(consoles: list[Page], timeout: float = 20) -> list[Page]:
    """The consoles showing an offer, once at least one does."""
    deadline = time.monotonic() + timeout
    while True:
        showing = [c for c in consoles if await c.locator("#offers .offer").count()]
        if showing or time.monotonic() > deadline:
            return showing
        await asyncio.sleep(0.1)


async def test_round_robin_offers_to_one_agent_who_declines_then_the_other_accepts(
    server_with, new_page
):
    srv = await server_with(ROUTING="round_robin", ROUTING_TEAMS="urgent=delivery")
    admin = await api_token(srv, ADMIN_EMAIL, ADMIN_PASSWORD)
    names = {}
    consoles = []
    for name in ("Alice", "Bob"):
        email, password = await routed_agent(srv, admin, name)
        console = await new_page(1280, 800, goto=False)
        await console.add_init_script(ALERT_SPIES)
        await console.goto(srv.url + "/agent/")
        await sign_in(console, email, password)
        await console.click("#alerts-toggle")
        names[id(console)] = name
        consoles.append(console)
    for console in consoles:
        await expect(console.locator("#online-count")).to_have_text("2")

    customer = await customer_page(new_page, srv)
    session = await joined(customer)
    await ask(customer, URGENT)

    showing = await offers_in(consoles)
    assert len(showing) == 1, "exactly one console gets the offer"
    first = showing[0]
    second = next(c for c in consoles if c is not first)
    offer = first.locator("#offers .offer")
    await expect(offer).to_have_attribute("data-session-id", session)
    await expect(offer.get_by_role("heading")).to_have_text("A conversation is offered to you")
    await expect(offer).to_contain_text("Team delivery")
    await expect(offer.get_by_role("timer")).to_have_text(re.compile(r"Expires in \d+ s"))
    await expect(first.locator("#urgent-announcer")).to_contain_text("offered to you")
    await wait_for_js(
        first,
        "window.__tones >= 1 && "
        "window.__notes.some(n => n.title === 'A conversation is offered to you')",
    )
    item = queue_item(first, session)
    await expect(item).to_contain_text("Offered to you")
    await expect(item).to_contain_text("Team delivery")
    assert await axe_violations(first) == []
    await first.screenshot(path="/tmp/supportbot-offer.png")
    assert await second.locator("#offers .offer").count() == 0

    await offer.get_by_role("button", name="Decline").click()
    await expect(offer).to_have_count(0)
    other = second.locator("#offers .offer")
    await expect(other).to_have_count(1)
    await expect(other).to_have_attribute("data-session-id", session)
    await expect(queue_item(second, session)).to_contain_text("Offered to you")

    await other.get_by_role("button", name="Accept").click()
    await expect(other).to_have_count(0)
    await expect(second.locator("#conv-status")).to_have_text("Assigned")
    await expect(second.locator("#conv-holder")).to_contain_text("with you")
    await expect(second.locator("#reply")).to_be_focused()
    taker = names[id(second)]
    await expect(customer.locator(".msg--system").last).to_have_text(
        f"{taker} joined the conversation"
    )
    await expect(queue_item(first, session)).to_contain_text(f"With {taker}")
    assert await first.locator("#offers .offer").count() == 0


async def test_a_queue_reminder_highlights_the_item(new_page, live_server):
    """`queue-reminder` (nobody claimed it within HANDOFF_TIMEOUT), injected on the wire."""
    console = await open_console(new_page, live_server)
    taps: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        taps.append(ws)

    # Only the console's socket; its frames go on to the server untouched.
    await console.route_web_socket(re.compile(r"/socket\.io/"), route)
    await console.add_init_script(ALERT_SPIES)
    await console.reload()
    await sign_in(console)
    await console.click("#alerts-toggle")
    customer = await customer_page(new_page, live_server)
    session = await joined(customer)
    await ask(customer, URGENT)
    item = queue_item(console, session)
    await expect(item).to_be_visible()
    taps[-1].send(
        "42/agents,"
        + json.dumps(
            [
                "queue-reminder",
                {
                    "sessionId": session,
                    "waitingSince": "2026-01-01T00:00:00Z",
                    "waitingSeconds": 330,
                },
            ]
        )
    )
    await expect(item).to_contain_text("Still waiting after 5 min: nobody has claimed it")
    await expect(
        console.locator(f'#queue li[data-reminder="true"] [data-session-id="{session}"]')
    ).to_be_visible()
    await wait_for_js(
        console,
        "window.__notes.some(n => n.title === 'A customer is still waiting')",
    )
    assert await axe_violations(console) == []
    await console.screenshot(path="/tmp/supportbot-reminder.png")
    # Claimed: the highlight goes.
    await item.click()
    await console.click("#claim")
    await expect(console.locator("#conv-status")).to_have_text("Assigned")
    await expect(console.locator('#queue li[data-reminder="true"]')).to_have_count(0)
