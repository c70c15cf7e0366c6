"""The agent console (/agent) and the customer page together, in a real browser against the
real server: a customer on one browser context, agents on others, nothing mocked except
where a test says so (a 429 answer, a rating sent over REST, events a console missed)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, LiveServer, wait_for_js

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

SHIPPING_Q = "How long does shipping take?"
SHIPPING_A = "Standard shipping takes 3-5 business days"
URGENT_Q = "This is urgent: my parcel never arrived"
URGENT_AGAIN = "Urgent again, the replacement is broken"

# Stand-ins for the browser's notification and sound, recording what the console does with
# them (headless Chromium has no notification centre and no speakers).
ALERT_SPIES = """(() => {
  window.__notes = [];
  window.__tones = 0;
  class FakeNotification {
    constructor(title, options) { window.__notes.push({title, body: (options || {}).body}); }
    close() {}
    static requestPermission() { return Promise.resolve('granted'); }
  }
  FakeNotification.permission = 'granted';
  window.Notification = FakeNotification;
  const Real = window.AudioContext;
  if (Real) {
    const create = Real.prototype.createOscillator;
    Real.prototype.createOscillator = function () {
      window.__tones += 1;
      return create.call(this);
    };
  }
})()"""


# --- helpers -------------------------------------------------------------------------------


async def joined(page: Page) -> str:
    """Wait until the customer page has joined a conversation; its session id."""
    await expect(page.locator("#connection")).to_have_text("Connected")
    await wait_for_js(
        page,
        "() => localStorage.getItem('supportbot.sessionId')"
        " && document.querySelector('#messages li')"
        " && document.getElementById('hint').textContent !== 'Connecting to support…'",
    )
    return await page.evaluate("localStorage.getItem('supportbot.sessionId')")


async def ask(page: Page, text: str) -> None:
    await page.fill("#message", text)
    await page.press("#message", "Enter")


async def open_console(new_page, server: LiveServer, width: int = 1280, height: int = 800, **kw):
    page = await new_page(width, height, goto=False, **kw)
    await page.goto(server.url + "/agent/")
    await expect(page.locator("#signin-form")).to_be_visible()
    return page


async def sign_in(page: Page, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.click("#signin-submit")
    await expect(page.locator("#console")).to_be_visible()
    await expect(page.locator("#connection")).to_have_text("Live")


def queue_item(page: Page, session_id: str):
    return page.locator(f'#queue [data-session-id="{session_id}"]')


async def api_token(server: LiveServer, email: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=server.url + "/api/v1", timeout=10) as client:
        res = await client.post("/agents/login", json={"email": email, "password": password})
        res.raise_for_status()
        return res.json()["token"]


async def make_agent(server: LiveServer, name: str) -> tuple[str, str]:
    """A new agent account (made by the admin over the API); its e-mail and password."""
    email = f"{name.lower()}-{re.sub(r'[^a-z0-9]', '', server.prefix[-12:])}@supportbot.test"
    password = f"{name}-password-123"
    token = await api_token(server, ADMIN_EMAIL, ADMIN_PASSWORD)
    async with httpx.AsyncClient(base_url=server.url + "/api/v1", timeout=10) as client:
        res = await client.post(
            "/agents",
            json={"email": email, "name": name, "password": password, "role": "agent"},
            headers={"Authorization": f"Bearer {token}"},
        )
        if res.status_code != 409:  # made by an earlier test of this run
            res.raise_for_status()
    return email, password


async def send_reply(page: Page, text: str) -> None:
    """Type a reply and send it with Enter once the console allows sending (a claim or a
    reload may still be settling; a disabled Send ignores Enter)."""
    await page.fill("#reply", text)
    await expect(page.locator("#send")).to_be_enabled()
    await page.press("#reply", "Enter")


async def no_horizontal_scroll(page: Page) -> None:
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"
    )
    assert max(widths[:2]) <= widths[2], widths


class DropEvents:
    """Routes a console's Socket.IO WebSocket through the test, dropping chosen server
    events on the way to the page (as if the console had missed them)."""

    def __init__(self, *events: str) -> None:
        self.drop = set(events)

    async def install(self, page: Page) -> None:
        await page.route_web_socket(re.compile(r"/socket\.io/"), self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str) and any(f'["{e}"' in message[:60] for e in self.drop):
                return
            ws.send(message)

        server.on_message(from_server)
        ws.on_message(server.send)


# --- the whole conversation, customer and agent side by side -------------------------------


async def test_escalate_claim_chat_hand_back_resolve_and_rate(new_page, live_server):
    console = await open_console(new_page, live_server)
    await console.add_init_script(ALERT_SPIES)
    await console.reload()
    await sign_in(console)
    await console.click("#alerts-toggle")
    await expect(console.locator("#alerts-toggle")).to_have_attribute("aria-pressed", "true")

    customer = await new_page(900, 800)
    session = await joined(customer)

    # The customer escalates; the queue shows it live (no reload, no polling).
    await ask(customer, URGENT_Q)
    notice = customer.locator("#escalation")
    await expect(notice).to_contain_text("A member of our team will take over")
    await expect(notice).to_contain_text(re.compile(r"You're (next|number \d+) in the queue"))
    item = queue_item(console, session)
    await expect(item).to_be_visible()
    await expect(item).to_contain_text("Urgent")
    await expect(item).to_contain_text("Waiting")
    await expect(item).to_contain_text("Keyword “urgent”")
    waiting = item.locator(".qitem__wait")
    await expect(waiting).to_have_text(re.compile(r"^waiting \d+ s$"))
    first = await waiting.text_content()
    await expect(waiting).not_to_have_text(first or "", timeout=3000)  # the time ticks
    assert int(await console.locator("#count-escalated").text_content()) >= 1
    # The opted-in alert: a browser notification and a short sound.
    await wait_for_js(console, "window.__notes.length >= 1 && window.__tones >= 1")
    note = (await console.evaluate("window.__notes"))[-1]
    assert note["title"] == "A customer is waiting for a person"
    assert URGENT_Q in note["body"]

    # The conversation view: transcript with the bot's metadata, the reasons on top.
    await item.click()
    await expect(item).to_have_attribute("aria-current", "true")
    transcript = console.locator("#transcript")
    await expect(transcript.locator(".entry--customer").first).to_contain_text(URGENT_Q)
    await expect(transcript.locator(".entry--bot").first).to_contain_text("member of our team")
    await expect(transcript.locator(".entry--bot .entry__meta").first).to_contain_text("local")
    await expect(console.locator("#reasons")).to_contain_text("Keyword “urgent”")
    await expect(console.locator("#conv-status")).to_have_text("Waiting")
    await expect(console.locator("#send")).to_be_disabled()
    await expect(console.locator("#composer-hint")).to_have_text(
        "Claim this conversation to reply."
    )

    # Claim: the customer sees the agent join.
    await console.click("#claim")
    await expect(console.locator("#conv-status")).to_have_text("Assigned")
    await expect(console.locator("#conv-holder")).to_have_text("with you")
    await expect(item).to_contain_text("With you")
    await expect(customer.locator(".msg--system").last).to_have_text(
        f"{ADMIN_NAME} joined the conversation"
    )
    await expect(notice).to_be_hidden()

    # The agent types and replies; the customer sees both, the reply styled as the agent's.
    await console.fill("#reply", "Hello, I am looking into your parcel")
    await expect(customer.locator("#typing")).to_have_text(f"{ADMIN_NAME} is typing…")
    await expect(console.locator("#send")).to_be_enabled()
    await console.press("#reply", "Enter")
    agent_msg = customer.locator(".msg--agent").last
    await expect(agent_msg.locator(".msg__text")).to_have_text(
        "Hello, I am looking into your parcel"
    )
    await expect(agent_msg.locator(".msg__who")).to_have_text(ADMIN_NAME)
    await expect(customer.locator("#typing")).to_be_hidden()
    await expect(customer.locator("#announcer")).to_contain_text(f"{ADMIN_NAME} said: Hello")
    await expect(console.locator("#reply")).to_have_value("")

    # The customer types and answers; the agent sees both. No bot answer while a person has it.
    bot_replies = await customer.locator(".msg--assistant").count()
    await customer.fill("#message", "Thanks, the order is 1234")
    await expect(console.locator("#customer-typing")).to_have_text("Customer is typing…")
    await customer.press("#message", "Enter")
    await expect(transcript.locator(".entry--customer").last).to_have_text(
        re.compile("Thanks, the order is 1234")
    )
    await expect(console.locator("#customer-typing")).to_be_hidden()
    await expect(item.locator(".qitem__last")).to_have_text("Customer: Thanks, the order is 1234")
    await expect(customer.locator("#send")).to_be_disabled()  # empty box; not held for a reply
    await customer.fill("#message", "x")
    await expect(customer.locator("#send")).to_be_enabled()
    await customer.fill("#message", "")

    # An internal note: clearly internal for agents, never shown to the customer.
    await console.check("input[name=mode][value=note]")
    await expect(console.locator("#send")).to_have_text("Add note")
    await send_reply(console, "Carrier says lost; replacement approved")
    internal = transcript.locator(".entry--note").last
    await expect(internal).to_contain_text("Carrier says lost; replacement approved")
    await expect(internal).to_contain_text("Not shown to the customer")
    await console.check("input[name=mode][value=reply]")

    # Hand back: the assistant is back and answers again.
    await console.click("#handback")
    await expect(console.locator("#conv-status")).to_have_text("With the bot")
    await expect(item).to_be_hidden()
    await expect(customer.locator(".msg--system").last).to_have_text(
        "The assistant is back. Ask it anything."
    )
    assert await customer.locator(".msg--assistant").count() == bot_replies
    await ask(customer, SHIPPING_Q)
    await expect(customer.locator(".msg--assistant").last).to_contain_text(SHIPPING_A)

    # Escalate again: back in the queue, live; claim and resolve with a note.
    await ask(customer, URGENT_AGAIN)
    await expect(notice).to_be_visible()
    await expect(item).to_be_visible()
    await expect(item).to_contain_text("Waiting")
    await expect(console.locator("#conv-status")).to_have_text("Waiting")
    await expect(transcript).to_contain_text(SHIPPING_A)  # the bot's turn is in the transcript
    await console.click("#claim")
    await expect(customer.locator(".msg--system").last).to_have_text(
        f"{ADMIN_NAME} joined the conversation"
    )
    await console.click("#resolve")
    dialog = console.locator("#resolve-dialog")
    await expect(dialog).to_be_visible()
    await console.fill("#resolve-note", "Replacement sent")
    await console.click("#resolve-confirm")
    await expect(dialog).to_be_hidden()
    await expect(console.locator("#conv-status")).to_have_text("Resolved")
    await expect(transcript.locator(".entry--note").last).to_contain_text("Replacement sent")

    # The customer rates; the agent sees the rating.
    form = customer.locator("#csat")
    await expect(form).to_be_visible()
    await expect(customer.locator(".msg--system").last).to_have_text(
        "This conversation was marked as resolved."
    )
    await customer.click("label[for=rate-4]")
    await expect(customer.locator("#csat-value")).to_have_text("Good")
    await customer.fill("#csat-comment", "Quick and kind <b>thanks</b>")
    await customer.click("#csat-submit")
    await expect(form).to_be_hidden()
    await expect(customer.locator(".msg--system").last).to_have_text("Thank you for your rating.")
    csat = console.locator("#csat")
    await expect(csat).to_contain_text("4 out of 5")
    await expect(csat).to_contain_text("Quick and kind <b>thanks</b>")  # text, never HTML
    assert await console.locator("#csat b").count() == 0

    # Nothing internal ever reached the customer.
    await expect(customer.locator("#messages")).not_to_contain_text("Carrier says lost")
    await expect(customer.locator("#messages")).not_to_contain_text("Replacement sent")
    await console.screenshot(path="/tmp/supportbot-console-rated.png")
    await customer.screenshot(path="/tmp/supportbot-customer-rated.png")

    # A reload keeps both sides: the customer's transcript, the agent's sign-in (this tab).
    await customer.reload()
    await joined(customer)
    await expect(customer.locator(".msg--agent .msg__who").first).to_have_text(ADMIN_NAME)
    await expect(customer.locator("#messages")).not_to_contain_text("Carrier says lost")
    await expect(customer.locator("#csat")).to_be_hidden()  # rated already
    await console.reload()
    await expect(console.locator("#console")).to_be_visible()
    await expect(console.locator("#connection")).to_have_text("Live")


# --- sign-in and sign-out ------------------------------------------------------------------


async def test_a_failed_sign_in_says_why_and_keeps_the_form(new_page, live_server, page_problems):
    page = await open_console(new_page, live_server)
    await expect(page.locator("#email")).to_be_focused()
    await page.click("#signin-submit")
    error = page.locator("#signin-error")
    await expect(error).to_have_text("Enter your e-mail and your password.")
    await expect(error).to_have_attribute("role", "alert")

    await page.fill("#email", "nobody@supportbot.test")
    await page.fill("#password", "not-the-password")
    await page.click("#signin-submit")
    await expect(error).to_have_text("Wrong e-mail or password.")
    await expect(page.locator("#console")).to_be_hidden()
    await expect(page.locator("#password")).to_be_focused()
    await expect(page.locator("#email")).to_have_attribute("aria-invalid", "")

    # The throttle's answer, as the server gives it after five failures (mocked here so the
    # run's own sign-ins stay under the real limit).
    async def throttled(route):
        await route.fulfill(
            status=429,
            headers={"Retry-After": "240"},
            content_type="application/problem+json",
            body=json.dumps(
                {"status": 429, "title": "Too Many Requests", "code": "TOO_MANY_ATTEMPTS"}
            ),
        )

    await page.route("**/api/v1/agents/login", throttled)
    await page.click("#signin-submit")
    await expect(error).to_have_text("Too many failed attempts. Try again in 4 min.")
    await page.unroute("**/api/v1/agents/login")
    await sign_in(page)
    await expect(error).to_be_hidden()
    page_problems.errors[:] = [
        e for e in page_problems.errors if "Failed to load resource" not in e
    ]


async def test_sign_out_and_a_revoked_sign_in_return_to_the_form(
    new_page, live_server, page_problems
):
    page = await open_console(new_page, live_server)
    await sign_in(page)
    await expect(page.locator("#me")).to_contain_text(ADMIN_NAME)
    token = await page.evaluate("sessionStorage.getItem('supportbot.agentToken')")
    assert token

    # Signed out elsewhere (the token revoked): the live connection ends and the form returns.
    async with httpx.AsyncClient(base_url=live_server.url + "/api/v1", timeout=10) as client:
        res = await client.post("/agents/logout", headers={"Authorization": f"Bearer {token}"})
        assert res.status_code == 200
    await expect(page.locator("#signin-form")).to_be_visible(timeout=15000)
    await expect(page.locator("#signin-error")).to_contain_text("Please sign in again")
    assert await page.evaluate("sessionStorage.getItem('supportbot.agentToken')") is None

    # A token the server does not know (expired, say): the first call answers 401.
    await page.evaluate("sessionStorage.setItem('supportbot.agentToken', 'not-a-token')")
    await page.reload()
    await expect(page.locator("#signin-form")).to_be_visible()
    await expect(page.locator("#signin-error")).to_contain_text("Please sign in again")

    # Sign in again, then sign out with the button: the token stops working.
    await sign_in(page)
    token = await page.evaluate("sessionStorage.getItem('supportbot.agentToken')")
    await page.click("#signout")
    await expect(page.locator("#signin-form")).to_be_visible()
    await expect(page.locator("#signin-info")).to_have_text("You have signed out.")
    await expect(page.locator("#signin-error")).to_be_hidden()
    async with httpx.AsyncClient(base_url=live_server.url + "/api/v1", timeout=10) as client:
        res = await client.get("/agents/me", headers={"Authorization": f"Bearer {token}"})
        assert res.status_code == 401
    page_problems.errors[:] = [
        e for e in page_problems.errors if "Failed to load resource" not in e
    ]


async def test_the_console_is_served_at_agent_with_and_without_the_slash(live_server):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10, follow_redirects=True) as c:
        for path in ("/agent", "/agent/"):
            res = await c.get(path)
            assert res.status_code == 200, path
            assert "<title>Support console</title>" in res.text
            assert str(res.url).endswith("/agent/")


# --- two agents: a claim that lost the race, presence, a transfer --------------------------


async def test_a_lost_claim_names_the_holder_and_a_transfer_reaches_the_other_agent(
    new_page, live_server, page_problems
):
    alex = await make_agent(live_server, "Alex")
    bea = await make_agent(live_server, "Bea")
    customer = await new_page(900, 800)
    session = await joined(customer)
    await ask(customer, URGENT_Q)
    await expect(customer.locator("#escalation")).to_be_visible()

    first = await open_console(new_page, live_server)
    await sign_in(first, *alex)
    second = await open_console(new_page, live_server)
    missed = DropEvents("queue-updated", "conversation-updated")
    await missed.install(second)
    await second.reload()
    await sign_in(second, *bea)

    # Who's online, on both consoles; away shows as away.
    await expect(first.locator("#online")).to_contain_text("Bea")
    await expect(second.locator("#online")).to_contain_text("Alex")
    await second.select_option("#presence", "away")
    bea_row = first.locator("#online .agent-row", has_text="Bea")
    await expect(bea_row).to_contain_text("away")
    await second.select_option("#presence", "online")
    await expect(bea_row).to_contain_text("online")

    await queue_item(first, session).click()
    await queue_item(second, session).click()
    await first.click("#claim")
    await expect(first.locator("#conv-holder")).to_have_text("with you")
    # The second console missed the update and still offers Claim: the server says who won.
    await expect(second.locator("#claim")).to_be_enabled()
    await second.click("#claim")
    await expect(second.locator("#conv-alert")).to_have_text("Already claimed by Alex.")
    await expect(second.locator("#conv-holder")).to_have_text("with Alex")
    await expect(second.locator("#claim")).to_be_disabled()
    # Not the holder: notes yes, replies no.
    await expect(second.locator("#composer-hint")).to_contain_text("Only Alex can reply")
    await expect(second.locator("#handback")).to_be_disabled()
    missed.drop.clear()

    # Alex transfers to Bea (online, so offered): the customer sees Bea join, Bea can reply.
    await first.select_option("#transfer-to", label="Bea")
    await first.click("#transfer")
    await expect(first.locator("#conv-holder")).to_have_text("with Bea")
    await expect(customer.locator(".msg--system").last).to_have_text("Bea joined the conversation")
    await expect(second.locator("#conv-holder")).to_have_text("with you")
    await send_reply(second, "Bea here, I have it now")
    await expect(customer.locator(".msg--agent .msg__who").last).to_have_text("Bea")

    # Back to the queue: the customer is told; anyone may claim it again.
    await second.select_option("#transfer-to", "")
    await second.click("#transfer")
    await expect(second.locator("#conv-status")).to_have_text("Waiting")
    await expect(customer.locator(".msg--system").last).to_contain_text("back in the queue")
    await expect(first.locator("#claim")).to_be_enabled()
    page_problems.errors[:] = [
        e for e in page_problems.errors if "Failed to load resource" not in e
    ]


async def test_a_slow_transcript_answer_does_not_hide_newer_messages(new_page, live_server):
    """Each step reloads the transcript; an answer that left the server before the agent's
    reply (and arrives after it) must not take the reply off the screen."""
    console = await open_console(new_page, live_server)
    await sign_in(console)
    customer = await new_page(900, 800)
    session = await joined(customer)
    await ask(customer, URGENT_Q)
    await queue_item(console, session).click()
    await expect(console.locator("#transcript .entry--customer")).to_have_count(1)

    stale = []

    async def slow(route):
        """The first transcript read after this point answers late; later ones at once."""
        if route.request.method != "GET" or stale:
            await route.continue_()
            return
        stale.append("asked")
        response = await route.fetch()  # the transcript as it is now ...
        await asyncio.sleep(1.5)  # ... delivered after newer reads
        await route.fulfill(response=response)
        stale.append("answered")

    await console.route(f"**/api/v1/agents/conversations/{session}", slow)
    await console.click("#claim")  # starts a reload that will answer late
    await expect(console.locator("#conv-holder")).to_have_text("with you")
    await send_reply(console, "Sent while the reload was on its way")
    await expect(customer.locator(".msg--agent")).to_have_count(1)
    for _ in range(50):
        if "answered" in stale:
            break
        await asyncio.sleep(0.1)
    assert "answered" in stale, "the slow reload never answered"
    await asyncio.sleep(0.3)
    await expect(console.locator("#transcript .entry--agent")).to_have_text(
        [re.compile("Sent while the reload was on its way")]
    )


# --- accessibility and layout --------------------------------------------------------------


async def conversation_with_everything(
    new_page, server: LiveServer, console: Page, scheme: str = "light"
) -> Page:
    """A conversation open and claimed in `console` with a bot answer and its sources, the
    escalation reasons, an agent reply, a note and a draft; the customer's page."""
    customer = await new_page(900, 800, color_scheme=scheme)
    session = await joined(customer)
    await ask(customer, SHIPPING_Q)
    await expect(customer.locator(".msg--assistant").last).to_contain_text(SHIPPING_A)
    await ask(customer, URGENT_Q)
    await expect(customer.locator("#escalation")).to_be_visible()
    await queue_item(console, session).click()
    await console.click("#claim")
    await expect(console.locator("#conv-holder")).to_have_text("with you")
    await send_reply(console, "I can help with that")
    await expect(console.locator("#transcript .entry--agent")).to_have_count(1)
    await expect(customer.locator(".msg--agent")).to_have_count(1)
    await console.check("input[name=mode][value=note]")
    await send_reply(console, "Check the carrier")
    await expect(console.locator(".entry--note")).to_have_count(1)
    await console.check("input[name=mode][value=reply]")
    await console.fill("#reply", "Draft")
    return customer


async def axe_violations(page: Page) -> list[str]:
    await page.evaluate(AXE.read_text())  # not a script tag: the CSP blocks inline scripts
    return await page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .map(v => v.id + ' (' + v.impact + '): '
                  + v.nodes.map(n => n.target.join(' ')).join(', '))"""
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_axe_finds_no_violations_in_the_console(new_page, live_server, page_problems, scheme):
    console = await open_console(new_page, live_server, color_scheme=scheme)
    await console.click("#signin-submit")  # the sign-in form with its error showing
    await expect(console.locator("#signin-error")).not_to_be_empty()
    assert await axe_violations(console) == []

    await sign_in(console)
    await conversation_with_everything(new_page, live_server, console)
    await expect(console.locator("#csat")).to_be_hidden()
    assert await axe_violations(console) == []
    await console.click("#resolve")
    await expect(console.locator("#resolve-dialog")).to_be_visible()
    assert await axe_violations(console) == []
    await console.keyboard.press("Escape")
    await expect(console.locator("#resolve-dialog")).to_be_hidden()
    await console.screenshot(path=f"/tmp/supportbot-console-{scheme}.png")


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_axe_finds_no_violations_in_the_rating_prompt(new_page, live_server, scheme):
    console = await open_console(new_page, live_server)
    await sign_in(console)
    customer = await conversation_with_everything(new_page, live_server, console, scheme)
    await console.click("#resolve")
    await console.click("#resolve-confirm")
    await expect(customer.locator("#csat")).to_be_visible()
    assert await axe_violations(customer) == []
    # Keyboard only: the stars are one radio group (arrows move), then the comment, the buttons.
    await customer.focus("#rate-1")
    await customer.keyboard.press("ArrowRight")
    await customer.keyboard.press("ArrowRight")
    await expect(customer.locator("#rate-3")).to_be_checked()
    await expect(customer.locator("#csat-value")).to_have_text("Okay")
    await customer.keyboard.press("Tab")
    await expect(customer.locator("#csat-comment")).to_be_focused()
    await customer.keyboard.type("Fine")
    await customer.keyboard.press("Tab")
    await customer.keyboard.press("Tab")
    await expect(customer.locator("#csat-submit")).to_be_focused()
    await customer.keyboard.press("Enter")
    await expect(customer.locator("#csat")).to_be_hidden()
    await expect(customer.locator("#message")).to_be_focused()  # focus is not lost
    await expect(console.locator("#csat")).to_contain_text("3 out of 5")
    await expect(console.locator("#csat")).to_contain_text("Fine")


async def tab_to(page: Page, selector: str, *, backwards: bool = False, limit: int = 80) -> None:
    """Press Tab (or Shift+Tab) until `selector` has the focus."""
    for _ in range(limit):
        if await page.evaluate("s => document.activeElement.matches(s)", selector):
            return
        await page.keyboard.press("Shift+Tab" if backwards else "Tab")
    await expect(page.locator(selector)).to_be_focused()


async def test_the_console_works_from_the_keyboard(new_page, live_server):
    console = await open_console(new_page, live_server)
    await console.keyboard.type(ADMIN_EMAIL)  # the e-mail field has the focus
    await console.keyboard.press("Tab")
    await console.keyboard.type(ADMIN_PASSWORD)
    await console.keyboard.press("Enter")
    await expect(console.locator("#connection")).to_have_text("Live")
    await expect(console.locator("#queue-title")).to_be_focused()

    customer = await new_page(900, 800)
    session = await joined(customer)
    await ask(customer, URGENT_Q)
    await expect(queue_item(console, session)).to_be_visible()

    await tab_to(console, f'[data-session-id="{session}"]')
    await console.keyboard.press("Enter")
    await expect(console.locator("#conv-title")).to_be_focused()
    await expect(console.locator("#transcript .entry--customer")).to_have_count(1)
    await console.keyboard.press("Tab")
    await expect(console.locator("#claim")).to_be_focused()
    await console.keyboard.press("Enter")
    await expect(console.locator("#reply")).to_be_focused()  # claimed: straight to the reply
    await console.keyboard.type("Typed without a mouse")
    await expect(console.locator("#send")).to_be_enabled()
    await console.keyboard.press("Enter")
    await expect(customer.locator(".msg--agent .msg__text")).to_have_text("Typed without a mouse")
    await expect(console.locator("#reply")).to_be_focused()

    # The resolve dialog: opens on Enter, the note field first, Escape closes it.
    await tab_to(console, "#resolve", backwards=True)
    await console.keyboard.press("Enter")
    await expect(console.locator("#resolve-note")).to_be_focused()
    await console.keyboard.press("Escape")
    await expect(console.locator("#resolve-dialog")).to_be_hidden()
    await expect(console.locator("#resolve")).to_be_focused()
    # Hand back from the keyboard: the button goes away, the focus does not get lost.
    await tab_to(console, "#handback", backwards=True)
    await console.keyboard.press("Enter")
    await expect(console.locator("#conv-status")).to_have_text("With the bot")
    # the live status update may land before the step's own answer, which puts the focus back
    await wait_for_js(console, "document.activeElement !== document.body", timeout=10)


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (768, 1024)])
async def test_the_console_fits_a_desktop_and_a_tablet(new_page, live_server, width, height):
    console = await open_console(new_page, live_server, width, height)
    await no_horizontal_scroll(console)
    await sign_in(console)
    await conversation_with_everything(new_page, live_server, console)
    for selector in ("#claim", "#handback", "#resolve", "#transfer", "#reply", "#send", "#queue"):
        await expect(console.locator(selector)).to_be_in_viewport()
    await console.fill("#reply", "y" * 500)  # one long word wraps, never widens the page
    await expect(console.locator("#send")).to_be_enabled()
    await console.press("#reply", "Enter")
    await expect(console.locator(".entry--agent")).to_have_count(2)
    await no_horizontal_scroll(console)
    box = await console.locator("#send").bounding_box()
    assert box and box["height"] >= 44
    await console.screenshot(path=f"/tmp/supportbot-console-{width}x{height}.png")


# --- the customer page's new events, injected on the wire ----------------------------------


async def test_agent_events_on_the_customer_page_are_text_only(tapped):
    page, tap = tapped
    session = await joined(page)
    evil = '<img src=x onerror="window.__pwned = 1">Sam'
    tap.emit(
        "conversation-updated",
        {"sessionId": session, "status": "escalated", "event": "escalated", "queuePosition": 3},
    )
    await expect(page.locator("#escalation")).to_contain_text("You're number 3 in the queue.")
    tap.emit(
        "conversation-updated",
        {"sessionId": session, "status": "escalated", "event": "escalated", "queuePosition": 1},
    )
    await expect(page.locator("#escalation")).to_contain_text("You're next in the queue.")
    tap.emit("agent-joined", {"sessionId": session, "agentName": evil})
    await expect(page.locator(".msg--system").last).to_have_text(evil + " joined the conversation")
    await expect(page.locator("#escalation")).to_be_hidden()
    tap.emit(
        "typing", {"sessionId": session, "isTyping": True, "sender": "agent", "agentName": evil}
    )
    await expect(page.locator("#typing")).to_have_text(evil + " is typing…")
    tap.emit(
        "message-received",
        {
            "sessionId": session,
            "messageId": "m-agent-000001",
            "message": "<b>Hi</b>",
            "isBot": False,
            "sender": "agent",
            "agentName": evil,
            "timestamp": "2026-01-01T00:00:00.000Z",
        },
    )
    msg = page.locator('.msg--agent[data-id="m-agent-000001"]')
    await expect(msg.locator(".msg__who")).to_have_text(evil)
    await expect(msg.locator(".msg__text")).to_have_text("<b>Hi</b>")
    await expect(page.locator("#typing")).to_be_hidden()
    # A person has the conversation: a message is not held waiting for a bot reply.
    await page.fill("#message", "ok")
    await page.press("#message", "Enter")
    await expect(page.locator("#hint")).not_to_have_text("Waiting for the reply…")
    await expect(page.locator("#message")).to_have_value("")
    tap.emit(
        "conversation-updated", {"sessionId": session, "status": "active", "event": "handed_back"}
    )
    await expect(page.locator(".msg--system").last).to_have_text(
        "The assistant is back. Ask it anything."
    )
    assert await page.locator("#messages img, #messages b").count() == 0
    assert await page.evaluate("window.__pwned") is None


async def test_the_rating_goes_over_rest_when_the_socket_does_not_answer(tapped, page_problems):
    page, tap = tapped
    session = await joined(page)
    tap.hold.add("rate")
    posted = []

    async def rating(route):
        posted.append(route.request.post_data_json)
        await route.fulfill(status=200, json={"success": True, "episode": 1, "rating": 2})

    await page.route(f"**/api/v1/chat/session/{session}/rating", rating)
    tap.emit(
        "conversation-updated", {"sessionId": session, "status": "resolved", "event": "resolved"}
    )
    tap.emit("csat-request", {"sessionId": session, "episode": 1})
    form = page.locator("#csat")
    await expect(form).to_be_visible()
    await page.click("#csat-submit")
    await expect(page.locator("#csat-error")).to_have_text("Choose from 1 to 5 stars first.")
    await page.click("label[for=rate-2]")
    await expect(page.locator("#csat-error")).to_be_hidden()
    await page.click("#csat-submit")
    await expect(form).to_be_hidden(timeout=10000)
    assert len(tap.held) == 1 and json.loads(tap.held[0][2:])[1] == {
        "sessionId": session,
        "rating": 2,
    }
    assert posted == [{"rating": 2}]
    await expect(page.locator(".msg--system").last).to_have_text("Thank you for your rating.")


# --- two instances behind one Redis --------------------------------------------------------


async def test_customer_and_agent_on_different_instances(new_page, server_pair):
    one, two = server_pair
    console = await open_console(new_page, two)
    await sign_in(console)
    customer = await new_page(900, 800, goto=False)
    await customer.goto(one.url + "/")
    session = await joined(customer)

    await ask(customer, URGENT_Q)
    item = queue_item(console, session)
    await expect(item).to_be_visible()  # escalated on one, live on two
    await item.click()
    await console.click("#claim")
    await expect(customer.locator(".msg--system").last).to_have_text(
        f"{ADMIN_NAME} joined the conversation"
    )
    await console.fill("#reply", "Hello from the other instance")
    await expect(customer.locator("#typing")).to_have_text(f"{ADMIN_NAME} is typing…")
    await expect(console.locator("#send")).to_be_enabled()
    await console.press("#reply", "Enter")
    await expect(customer.locator(".msg--agent .msg__text").last).to_have_text(
        "Hello from the other instance"
    )
    await customer.fill("#message", "Got it, thanks")
    await expect(console.locator("#customer-typing")).to_have_text("Customer is typing…")
    await customer.press("#message", "Enter")
    await expect(console.locator("#transcript .entry--customer").last).to_contain_text(
        "Got it, thanks"
    )

    await console.click("#resolve")
    await console.click("#resolve-confirm")
    await expect(customer.locator("#csat")).to_be_visible()
    await customer.click("label[for=rate-5]")
    await customer.click("#csat-submit")
    await expect(customer.locator("#csat")).to_be_hidden()
    await expect(console.locator("#csat")).to_contain_text("5 out of 5")
