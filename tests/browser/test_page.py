"""The chat page in a real browser (Debian's Chromium driven by Playwright)."""

import pytest
from playwright.async_api import async_playwright, expect

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
async def page(server):
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = await browser.new_context(viewport={"width": 1000, "height": 800})
        page = await context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(server.url + "/")
        yield page
        assert errors == []
        await browser.close()


async def ask(page, text):
    await page.fill("#message", text)
    await page.press("#message", "Enter")


async def test_the_page_answers_a_question_from_the_knowledge_base(page):
    await expect(page.locator("#connection")).to_have_text("Connected")
    await ask(page, "How long does shipping take?")
    answer = page.locator(".msg--assistant").last
    await expect(answer).to_contain_text("Standard shipping takes 3-5 business days")
    await expect(answer.locator(".msg__meta")).to_contain_text("answered by local")
    await expect(answer.locator(".msg__sources a")).to_have_attribute("href", "https://acme.example/help/shipping/times")
    await expect(page.locator("#escalation")).to_be_hidden()


async def test_an_escalation_keyword_shows_the_escalation_notice(page):
    await expect(page.locator("#connection")).to_have_text("Connected")
    await ask(page, "I want to speak to a manager, this is urgent")
    await expect(page.locator("#escalation")).to_be_visible()
    await expect(page.locator(".msg--assistant").last).to_contain_text("member of our team")


async def test_the_conversation_survives_a_reload(page):
    await expect(page.locator("#connection")).to_have_text("Connected")
    await ask(page, "What payment methods do you accept?")
    await expect(page.locator(".msg--assistant").last).to_contain_text("PayPal")
    await page.reload()
    await expect(page.locator(".msg--user .msg__text")).to_have_text(["What payment methods do you accept?"])
    await expect(page.locator(".msg--assistant").last).to_contain_text("PayPal")


async def test_the_page_fits_a_phone_screen(server):
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = await browser.new_page(viewport={"width": 375, "height": 667})
        await page.goto(server.url + "/")
        await expect(page.locator("#message")).to_be_visible()
        await expect(page.locator("#send")).to_be_in_viewport()
        overflow = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert overflow is False
        await page.screenshot(path="/tmp/supportbot-phone.png")
        await browser.close()


async def test_nothing_is_shown_that_should_be_hidden(page):
    await expect(page.locator("#connection")).to_have_text("Connected")
    await expect(page.locator("#alert")).to_be_hidden()
    await expect(page.locator("#typing")).to_be_hidden()
    await expect(page.locator("#providers")).to_contain_text("local: available")
