"""The chat page in a real browser (Debian's Chromium driven by Playwright) against the real
server. Where a test needs events the embedded responder never sends (streaming chunks, a
reset, an error), it taps the page's Socket.IO WebSocket and injects them; everything else
is the real thing end to end."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import wait_for_js

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

SHIPPING_Q = "How long does shipping take?"
SHIPPING_A = "Standard shipping takes 3-5 business days"
SHIPPING_URL = "https://acme.example/help/shipping/times"
ESCALATE_Q = "I want to speak to a manager, this is urgent"


# --- helpers ---------------------------------------------------------------------------


async def joined(page: Page) -> str:
    """Wait until the page has joined a conversation; its session id."""
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


async def tab_to(page: Page, selector: str, *, backwards: bool = False, limit: int = 20) -> None:
    """Press Tab (or Shift+Tab) until `selector` has the focus."""
    for _ in range(limit):
        if await page.evaluate("s => document.activeElement.matches(s)", selector):
            return
        await page.keyboard.press("Shift+Tab" if backwards else "Tab")
    await expect(page.locator(selector)).to_be_focused()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bot(page: Page):
    return page.locator(".msg--assistant").last


# --- the brief's three ---------------------------------------------------------------------


async def test_a_knowledge_base_question_gets_its_answer_with_the_provider_caption(page):
    await joined(page)
    await ask(page, SHIPPING_Q)
    await expect(page.locator(".msg--user .msg__text").last).to_have_text(SHIPPING_Q)
    answer = bot(page)
    await expect(answer.locator(".msg__text")).to_contain_text(SHIPPING_A)
    await expect(answer.locator(".msg__meta")).to_have_text(
        re.compile(r"^answered by local · confidence \d{1,3}%$")
    )
    link = answer.locator(".msg__sources a")
    await expect(link).to_have_text("Shipping times")
    await expect(link).to_have_attribute("href", SHIPPING_URL)
    await expect(page.locator("#escalation")).to_be_hidden()
    await expect(page.locator("#typing")).to_be_hidden()
    await expect(page.locator("#announcer")).to_contain_text(
        SHIPPING_A
    )  # read out to screen readers
    await expect(page.locator("#message")).to_have_value("")


async def test_an_escalation_keyword_shows_the_escalation_notice(page):
    await joined(page)
    await ask(page, ESCALATE_Q)
    notice = page.locator("#escalation")
    await expect(notice).to_be_visible()
    await expect(notice).to_have_attribute("role", "status")
    # Nobody is signed in to the console on this server: the page says so honestly and
    # offers the e-mail form instead of promising that someone will take over.
    await expect(notice).to_contain_text("Nobody from our team can answer live right now.")
    await expect(notice).not_to_contain_text("will take over")
    await expect(notice).to_contain_text("“manager”")
    await expect(page.locator("#contact")).to_be_visible()
    await expect(page.locator("#contact-help")).to_contain_text(
        "Nobody from our team is available right now"
    )
    # The bot's own line is honest too: no promise that a person will take over.
    await expect(bot(page)).to_contain_text("Nobody from our team is available right now")
    await expect(bot(page)).not_to_contain_text("member of our team")


@pytest.mark.parametrize(("width", "height"), [(375, 667), (360, 640)])
async def test_the_page_is_usable_on_a_phone(new_page, width, height):
    page = await new_page(width, height, is_mobile=True, has_touch=True)
    await joined(page)
    for selector in ("#message", "#send", "#new-chat", "#connection"):
        await expect(page.locator(selector)).to_be_in_viewport()
    # On a touch screen Enter makes a new line; the Send button sends.
    await page.fill("#message", SHIPPING_Q)
    await page.tap("#send")
    await expect(bot(page)).to_contain_text(SHIPPING_A)
    # One long unbroken word must wrap, not widen the page (the bot is unsure: it escalates,
    # and stays out of the conversation after that).
    await page.fill("#message", "x" * 300)
    await page.tap("#send")
    await expect(page.locator("#escalation")).to_be_visible()
    await expect(page.locator("#send")).to_be_in_viewport()
    await expect(page.locator("#message")).to_be_in_viewport()
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"
    )
    assert max(widths[:2]) <= widths[2], widths
    # The providers fold into one line that opens to the list.
    await expect(page.locator("#providers-summary")).to_have_text("AI: 1 of 3 available")
    await expect(page.locator("#providers")).to_be_hidden()
    await page.tap("#providers-summary")
    await expect(page.locator("#providers")).to_be_visible()
    await expect(page.locator("#providers")).to_contain_text("local: available")
    box = await page.locator("#send").bounding_box()
    assert box and box["height"] >= 44 and box["width"] >= 44  # a comfortable touch target
    await page.screenshot(path=f"/tmp/supportbot-phone-{width}.png")


# --- conversations across reloads and restarts -----------------------------------------------


async def test_the_conversation_continues_after_a_reload(page):
    first = await joined(page)
    await ask(page, "What payment methods do you accept?")
    await expect(bot(page)).to_contain_text("PayPal")
    await page.reload()
    assert await joined(page) == first
    await expect(page.locator(".msg--user .msg__text")).to_have_text(
        ["What payment methods do you accept?"]
    )
    await expect(bot(page)).to_contain_text("PayPal")
    await expect(bot(page).locator(".msg__meta")).to_contain_text("answered by local")


async def test_a_forgotten_session_is_dropped_and_a_new_one_joined(new_page, live_server):
    page = await new_page(goto=False)
    stale = "Zz" * 16  # well-formed, but the server has never heard of it
    await page.add_init_script(f"localStorage.setItem('supportbot.sessionId', {stale!r})")
    await page.goto(live_server.url + "/")
    fresh = await joined(page)
    assert fresh != stale
    await expect(page.locator(".msg--system").last).to_contain_text(
        "previous conversation has ended"
    )
    await expect(page.locator(".alert")).to_have_count(0)
    await ask(page, SHIPPING_Q)
    await expect(bot(page)).to_contain_text(SHIPPING_A)


async def test_new_conversation_forgets_the_session(page):
    first = await joined(page)
    await ask(page, ESCALATE_Q)
    await expect(page.locator("#escalation")).to_be_visible()
    await page.click("#new-chat")
    second = await joined(page)
    assert second != first
    await expect(page.locator(".msg--user")).to_have_count(0)
    await expect(page.locator("#escalation")).to_be_hidden()
    await expect(page.locator("#message")).to_be_focused()


# --- keyboard and accessibility -----------------------------------------------------------------


async def test_the_page_works_with_the_keyboard_alone(page):
    await joined(page)
    await expect(page.locator("#message")).to_be_focused()  # where a keyboard user wants to start
    await page.keyboard.type(SHIPPING_Q)
    await page.keyboard.press("Enter")
    await expect(bot(page)).to_contain_text(SHIPPING_A)

    await page.keyboard.type("Is shipping free?")
    await page.keyboard.press("Tab")
    await expect(page.locator("#send")).to_be_focused()
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # a visible focus ring
    await page.keyboard.press("Enter")
    await expect(bot(page)).to_contain_text("$50")

    await tab_to(page, "#new-chat", backwards=True)
    await page.keyboard.press("Enter")
    await expect(page.locator(".msg--user")).to_have_count(0)
    await expect(page.locator("#message")).to_be_focused()

    await tab_to(page, ".skip-link", backwards=True)  # first in the tab order, shown when focused
    skip = page.locator(".skip-link")
    await expect(skip).to_be_in_viewport()
    await page.keyboard.press("Enter")
    await expect(page.locator("#message")).to_be_focused()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_axe_finds_no_accessibility_violations(new_page, scheme):
    page = await new_page(color_scheme=scheme)
    await joined(page)
    await ask(page, SHIPPING_Q)
    await expect(bot(page)).to_contain_text(SHIPPING_A)
    await ask(page, ESCALATE_Q)
    await expect(page.locator("#escalation")).to_be_visible()
    await page.fill("#message", "Draft")
    await page.evaluate(AXE.read_text())  # not a script tag: the CSP blocks inline scripts
    violations = await page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .map(v => v.id + ' (' + v.impact + '): '
                       + v.nodes.map(n => n.target.join(' ')).join(', '))"""
    )
    assert violations == []


# --- events the embedded responder never sends, injected on the wire ---------------------------


async def test_streaming_chunks_a_reset_and_the_final_reply(tapped):
    page, tap = tapped
    session = await joined(page)
    tap.emit("typing", {"sessionId": session, "isTyping": True})
    await expect(page.locator("#typing")).to_have_text("Assistant is typing…")

    mid = "m-stream-0001"
    tap.emit("message-chunk", {"sessionId": session, "messageId": mid, "delta": "Our ret"})
    tap.emit("message-chunk", {"sessionId": session, "messageId": mid, "delta": "urns are"})
    bubble = page.locator(f'.msg--assistant[data-id="{mid}"]')
    await expect(bubble.locator(".msg__text")).to_have_text("Our returns are")
    await expect(bubble).to_have_class(re.compile(r"msg--streaming"))
    await expect(page.locator("#typing")).to_be_hidden()

    tap.emit("message-reset", {"sessionId": session, "messageId": mid})  # the fallback takes over
    await expect(bubble.locator(".msg__text")).to_have_text("")
    tap.emit("message-chunk", {"sessionId": session, "messageId": mid, "delta": "You can ret"})
    await expect(bubble.locator(".msg__text")).to_have_text("You can ret")

    tap.emit(
        "message-received",
        {
            "sessionId": session,
            "messageId": mid,
            "message": "You can return items within 30 days.",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "isBot": True,
            "needsEscalation": False,
            "confidence": 0.834,
            "provider": "gemini",
            "sources": [
                {
                    "id": "return_policy",
                    "title": "Returns",
                    "url": "https://acme.example/help/returns",
                    "score": 0.9,
                },
                {"id": "no_url", "title": "Refund timing", "score": 0.4},
            ],
        },
    )
    await expect(bubble.locator(".msg__text")).to_have_text("You can return items within 30 days.")
    await expect(bubble.locator(".msg__meta")).to_have_text("answered by gemini · confidence 83%")
    await expect(bubble).not_to_have_class(re.compile(r"msg--streaming"))
    await expect(bubble.locator(".msg__sources li")).to_have_text(["Returns", "Refund timing"])
    await expect(bubble.locator(".msg__sources a")).to_have_count(1)
    await expect(page.locator(".msg--assistant")).to_have_count(1)
    tap.emit("typing", {"sessionId": session, "isTyping": False})
    await expect(page.locator("#typing")).to_be_hidden()


async def test_server_text_is_never_parsed_as_html(tapped):
    page, tap = tapped
    session = await joined(page)
    evil = '<img src=x onerror="window.__pwned = 1"><b>bold</b>'
    tap.emit(
        "message-received",
        {
            "sessionId": session,
            "messageId": "m-evil-00001",
            "message": evil,
            "isBot": True,
            "needsEscalation": True,
            "confidence": 0.2,
            "provider": "<i>p</i>",
            "sources": [
                {
                    "id": "x",
                    "title": "<script>window.__pwned = 2</script>",
                    "url": "javascript:window.__pwned=3",
                }
            ],
            "escalation": {"reasons": [{"rule": "keyword", "detail": "<u>urgent</u>"}]},
        },
    )
    bubble = page.locator('[data-id="m-evil-00001"]')
    await expect(bubble.locator(".msg__text")).to_have_text(evil)
    await expect(bubble.locator(".msg__meta")).to_have_text("answered by <i>p</i> · confidence 20%")
    await expect(bubble.locator(".msg__sources li")).to_have_text(
        "<script>window.__pwned = 2</script>"
    )
    await expect(bubble.locator(".msg__sources a")).to_have_count(0)  # no javascript: links
    await expect(page.locator("#escalation")).to_contain_text("“<u>urgent</u>”")
    assert (
        await page.locator("#messages img, #messages b, #messages script, #escalation u").count()
        == 0
    )
    assert await page.evaluate("window.__pwned") is None


async def test_an_error_is_shown_dismissably_and_the_chat_carries_on(tapped):
    page, tap = tapped
    await joined(page)
    tap.emit("error", {"message": "That did not work; please try again.", "code": "SOMETHING"})
    alert = page.locator(".alert")
    await expect(alert).to_have_count(1)
    await expect(alert).to_have_attribute("role", "alert")
    await expect(alert).to_contain_text("That did not work; please try again.")
    await page.click(".alert__close")
    await expect(alert).to_have_count(0)
    await expect(page.locator("#message")).to_be_focused()
    await ask(page, SHIPPING_Q)  # the connection stayed up
    await expect(bot(page)).to_contain_text(SHIPPING_A)


async def test_a_refused_message_comes_back_to_the_box(tapped):
    page, tap = tapped
    await joined(page)
    tap.hold.add("send-message")
    await ask(page, "Where is my order?")
    await expect(page.locator("#send")).to_be_disabled()  # no double submit while it is in flight
    await expect(page.locator("#hint")).to_have_text("Waiting for the reply…")
    await page.fill("#message", "Second thoughts")
    await page.press("#message", "Enter")
    await expect(page.locator(".msg--user")).to_have_count(1)
    assert len(tap.held) == 1
    await page.fill("#message", "")
    tap.emit("error", {"message": "send-message: message: too long", "code": "INVALID_MESSAGE"})
    await expect(page.locator(".msg--user").last).to_have_class(re.compile(r"msg--failed"))
    await expect(page.locator("#message")).to_have_value("Where is my order?")
    await expect(page.locator("#send")).to_be_enabled()


async def test_the_page_reconnects_and_keeps_the_conversation(tapped):
    page, tap = tapped
    session = await joined(page)
    await page.evaluate("""() => {
        window.__states = [];
        const pill = document.getElementById('connection');
        new MutationObserver(() => window.__states.push(pill.dataset.state))
            .observe(pill, {attributes: true, childList: true});
    }""")
    await ask(page, SHIPPING_Q)
    await expect(bot(page)).to_contain_text(SHIPPING_A)
    await tap.routes[-1].close()
    await wait_for_js(page, "window.__states.includes('reconnecting')")
    await expect(page.locator("#connection")).to_have_text("Connected", timeout=15000)
    assert len(tap.routes) >= 2
    assert await joined(page) == session
    await expect(page.locator(".msg--user")).to_have_count(1)
    await ask(page, "What payment methods do you accept?")
    await expect(bot(page)).to_contain_text("PayPal")


# --- the status area and the message limit --------------------------------------------


async def test_the_status_area_shows_the_providers(page):
    await joined(page)
    providers = page.locator("#providers")
    await expect(providers).to_contain_text("local: available")
    await expect(providers).to_contain_text("openai: not configured")
    await expect(providers).to_contain_text("gemini: not configured")
    await expect(providers).to_contain_text("redis: connected")
    await expect(providers).to_be_visible()  # a wide screen shows every pill
    await expect(page.locator("#providers-summary")).to_be_hidden()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            503,
            {"status": "unhealthy", "services": {"redis": "disconnected"}},
            ["redis: disconnected"],
        ),
        (
            200,
            {"responders": {"openai": {"state": "open", "configured": True}, "local": {}}},
            ["openai: unavailable", "local: unknown"],
        ),
        (200, {}, []),
        (500, "not json", ["status: unknown"]),
    ],
)
async def test_the_status_area_tolerates_odd_health_answers(
    new_page, live_server, page_problems, status, body, expected
):
    page = await new_page(goto=False)

    async def fulfil(route):
        if isinstance(body, str):
            await route.fulfill(status=status, body=body, content_type="text/plain")
        else:
            await route.fulfill(status=status, json=body)

    await page.route("**/api/v1/health", fulfil)
    await page.goto(live_server.url + "/")
    await joined(page)
    await expect(page.locator("#providers li")).to_have_text(expected)
    page_problems.errors[:] = [
        e for e in page_problems.errors if "Failed to load resource" not in e
    ]


async def test_the_limit_and_counter_follow_the_spec(page):
    await joined(page)
    await expect(page.locator("#message")).to_have_attribute("maxlength", "4000")
    await expect(page.locator("#send")).to_be_disabled()
    await page.fill("#message", "   ")
    await expect(page.locator("#send")).to_be_disabled()  # blank is not a message
    await page.fill("#message", "Hello")
    await expect(page.locator("#counter")).to_have_text("5 / 4000 characters")
    await expect(page.locator("#send")).to_be_enabled()
    await page.fill("#message", "y" * 3700)
    await expect(page.locator("#counter")).to_have_class(re.compile(r"counter--near"))
    await expect(page.locator("#announcer")).to_contain_text("300 characters left.")


async def test_the_page_falls_back_to_polling_when_websockets_are_refused(
    new_page, live_server, page_problems
):
    page = await new_page(goto=False, bypass_csp=True)  # the test points WebSocket elsewhere
    # As behind a proxy that refuses the upgrade: every WebSocket handshake fails.
    await page.add_init_script(f"""(() => {{
        const Real = window.WebSocket;
        window.__wsTries = 0;
        window.WebSocket = class extends Real {{
            constructor(url, protocols) {{
              window.__wsTries += 1;
              super("ws://127.0.0.1:{closed_port()}/", protocols);
            }}
        }};
    }})()""")
    await page.goto(live_server.url + "/")
    await joined(page)
    await ask(page, SHIPPING_Q)
    await expect(bot(page)).to_contain_text(SHIPPING_A)
    assert await page.evaluate("window.__wsTries") >= 1
    page_problems.errors[:] = [e for e in page_problems.errors if "WebSocket connection" not in e]
