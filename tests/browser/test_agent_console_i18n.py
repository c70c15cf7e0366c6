"""The agent console in the agent's language: its labels come from the message catalogues,
chosen by the browser's Accept-Language (German here) or forced with ?lang= (French here),
with no catalogue key left showing; axe finds nothing to fix in the German console."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer
from tests.browser.test_agent_console import axe_violations

pytestmark = pytest.mark.browser

# Every text, accessible name, placeholder and tooltip of the document (hidden parts too)
# plus its title: a catalogue key in any of them is a label that was never translated.
RAW_KEYS = r"""() => {
  const texts = [document.title, document.body.textContent];
  for (const node of document.querySelectorAll('[aria-label], [placeholder], [title]')) {
    texts.push(node.getAttribute('aria-label') || '', node.getAttribute('placeholder') || '',
               node.getAttribute('title') || '');
  }
  return texts.join('\n').match(/\bconsole\.[a-z_]+/g) || [];
}"""


async def open_console(new_page, server: LiveServer, query: str = "", **context) -> Page:
    page = await new_page(1280, 800, goto=False, **context)
    await page.goto(server.url + "/agent/" + query)
    await expect(page.locator("#signin-form")).to_be_visible()
    return page


async def sign_in(page: Page) -> None:
    await page.fill("#email", ADMIN_EMAIL)
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#signin-submit")
    await expect(page.locator("#console")).to_be_visible()


async def test_the_console_follows_the_browser_language(new_page, live_server):
    console = await open_console(new_page, live_server, locale="de-DE")
    await expect(console.locator("html")).to_have_attribute("lang", "de")
    await expect(console.locator("#signin-title")).to_have_text("Support-Konsole")
    await expect(console.locator("label[for=password]")).to_have_text("Passwort")
    await expect(console.locator("#signin-submit")).to_have_text("Anmelden")
    assert await console.title() == "Anmelden · Support-Konsole"
    await console.click("#signin-submit")  # an empty form: the error comes from the catalogue
    await expect(console.locator("#signin-error")).to_have_text(
        "Geben Sie Ihre E-Mail-Adresse und Ihr Passwort ein."
    )
    assert await console.evaluate(RAW_KEYS) == []

    await sign_in(console)
    await expect(console.locator("#connection")).to_have_text("Live")
    await expect(console.locator("#queue-title")).to_have_text("Warteschlange")
    await expect(console.locator("#view-conversations")).to_have_text("Gespräche")
    await expect(console.locator("#conv-title-empty")).to_have_text("Kein Gespräch geöffnet")
    await expect(console.locator("#reply")).to_have_attribute(
        "placeholder", "Schreiben Sie Ihre Antwort…"
    )
    await expect(console.locator("#queue")).to_have_attribute("aria-label", "Gespräche")
    assert await console.evaluate(RAW_KEYS) == []
    assert await axe_violations(console) == []


async def test_lang_in_the_address_forces_the_console_language(new_page, live_server):
    console = await open_console(new_page, live_server, "?lang=fr", locale="en-US")
    await expect(console.locator("#signin-title")).to_have_text("Console d'assistance")
    await expect(console.locator("label[for=email]")).to_have_text("E-mail")
    await expect(console.locator("#signin-submit")).to_have_text("Se connecter")
    await sign_in(console)
    await expect(console.locator("#connection")).to_have_text("En direct")
    await expect(console.locator("#queue-title")).to_have_text("File d'attente")
    await expect(console.locator("#signout")).to_have_text("Se déconnecter")
    await expect(console.locator("#alerts-toggle")).to_have_attribute(
        "title",
        "Un son et une notification du navigateur quand une conversation est escaladée",
    )
    await console.click("#view-tickets")
    await expect(console.locator("#tickets-title")).to_have_text("Tickets")
    await expect(console.locator("#ticket-title-empty")).to_have_text("Aucun ticket ouvert")
    assert await console.evaluate(RAW_KEYS) == []
