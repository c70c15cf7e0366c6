"""Both pages work under their Content-Security-Policy (no `unsafe-inline`) and the browser
reports no violation: a `securitypolicyviolation` listener installed before any script runs,
plus the console (every page test already fails on a console error)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, wait_for_js
from tests.browser.test_page import SHIPPING_A, SHIPPING_Q, ask, bot, joined

LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


async def open_with_listener(new_page, url: str) -> tuple[Page, dict[str, str]]:
    page = await new_page(goto=False)
    await page.add_init_script(LISTEN)
    response = await page.goto(url)
    assert response is not None
    return page, await response.all_headers()


async def test_the_chat_page_works_under_its_csp_with_no_violation(new_page, live_server):
    page, headers = await open_with_listener(new_page, live_server.url + "/")
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    await joined(page)
    await ask(page, SHIPPING_Q)
    await expect(bot(page).locator(".msg__text")).to_contain_text(SHIPPING_A)
    await expect(page.locator("#providers")).to_contain_text("local: available")
    await page.set_viewport_size({"width": 360, "height": 700})  # the small-screen layout
    await page.fill("#message", "line one\nline two\nline three")  # the input grows (JS style)
    assert await page.evaluate("window.__csp") == []


async def test_the_agent_console_works_under_its_csp_with_no_violation(new_page, live_server):
    page, headers = await open_with_listener(new_page, live_server.url + "/agent/")
    assert "unsafe-inline" not in headers["content-security-policy"]
    await page.fill("#email", ADMIN_EMAIL)
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#signin-submit")
    await expect(page.locator("#console")).to_be_visible()
    await expect(page.locator("#connection")).to_have_text("Live")
    assert await page.evaluate("window.__csp") == []


async def test_a_violation_would_be_seen(new_page, live_server, page_problems):
    """The listener works: an inline script is blocked and reported."""
    page, _ = await open_with_listener(new_page, live_server.url + "/")
    await page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__ran = true'; document.body.append(s); }"""
    )
    await wait_for_js(page, "window.__csp.length > 0")
    assert await page.evaluate("window.__ran === undefined")
    assert any("Content Security Policy" in e for e in page_problems.errors)
    page_problems.errors.clear()  # expected here, and only here
