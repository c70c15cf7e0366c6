"""Agent assist in the console, in a real browser against the real server: the handoff
summary at the top of the conversation, a reply suggestion inserted with Alt+1 and with a
click, edited and sent, reaching the customer and counted as used."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.browser.test_agent_console import (
    api_token,
    ask,
    axe_violations,
    joined,
    open_console,
    queue_item,
    sign_in,
)

pytestmark = pytest.mark.browser

ORDER = "This is urgent: my order ORD-48213 never arrived"
RETURN_Q = "How do I return an item?"
RETURN_A = re.compile(r"^You can return unworn items")


async def used_counts(url: str, token: str) -> dict:
    """/health's suggestion counters, as an admin sees them."""
    async with httpx.AsyncClient() as client:
        res = await client.get(url + "/health", headers={"Authorization": f"Bearer {token}"})
    return dict(res.json()["counters"]["suggestions"])


async def test_the_agent_reads_the_summary_inserts_a_suggestion_and_sends_it(
    new_page, live_server, page_problems
):
    token = await api_token(live_server, ADMIN_EMAIL, ADMIN_PASSWORD)
    before = await used_counts(live_server.url, token)

    console = await open_console(new_page, live_server)
    await sign_in(console)
    customer = await new_page(900, 800)
    session = await joined(customer)
    await ask(customer, ORDER)
    await queue_item(console, session).click()
    summary = console.locator("#summary")
    await expect(summary).to_contain_text("Handoff summary")
    await expect(summary).to_contain_text("Extracted, no model")
    await expect(summary).to_contain_text("ORD-48213")
    await expect(summary).to_contain_text("keyword")

    await console.click("#claim")
    await expect(console.locator("#conv-status")).to_have_text("Assigned")
    await ask(customer, RETURN_Q)
    first = console.locator("#suggestions .suggestion").first
    await expect(first).to_contain_text("You can return unworn items")
    await expect(first).to_contain_text("Knowledge base")
    assert await axe_violations(console) == []

    reply = console.locator("#reply")
    await reply.focus()
    await console.keyboard.press("Alt+1")  # the key inserts it
    await expect(reply).to_have_value(RETURN_A)
    await reply.fill("")
    await first.click()  # and so does a click
    await expect(reply).to_have_value(RETURN_A)
    await expect(reply).to_be_focused()
    await reply.press("End")
    await reply.type(" Anything else I can do?")
    await expect(console.locator("#send")).to_be_enabled()
    await reply.press("Enter")

    await expect(customer.locator("#messages")).to_contain_text("Anything else I can do?")
    await expect(console.locator("#suggestions")).to_be_empty()
    after = await used_counts(live_server.url, token)
    assert after["used"] == before["used"] + 1 and after["edited"] == before["edited"] + 1
    assert after["usedByOrigin"]["knowledge"] == before["usedByOrigin"].get("knowledge", 0) + 1
    assert page_problems.errors == []
