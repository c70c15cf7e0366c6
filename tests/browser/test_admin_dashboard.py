"""The analytics dashboard (/admin) in a real browser against an instance of its own: after a
few scripted conversations it shows the figures the Analytics API returns, its charts hold the
API's series, a knowledge gap becomes a knowledge-base entry through the prefilled form, and
axe finds nothing to fix at 1280x800 in either colour scheme."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, LiveServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

ANSWERED = ["How long does shipping take?", "How long does delivery take?"]
ESCALATED = ["This is urgent: my parcel never arrived", "I want a refund now"]
UNANSWERED = [  # paraphrases: one gap group
    "Can you repair the gears on my bicycle?",
    "Could you fix my bicycle gears?",
    "Do you repair bicycle gears?",
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def seed(server: LiveServer) -> dict[str, Any]:
    """Scripted conversations through the public API; the admin's token."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        for n, text in enumerate(ANSWERED + ESCALATED + UNANSWERED):
            res = await api.post(
                "/api/v1/chat/session", json={"userId": f"customer-{n % 5}", "metadata": {}}
            )
            sid = res.json()["sessionId"]
            res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": text})
            assert res.status_code == 200, res.text
        login = await api.post(
            "/api/v1/agents/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        token = login.json()["token"]
        summary = (await api.get("/api/v1/analytics/summary", headers=bearer(token))).json()
        gaps = (await api.get("/api/v1/analytics/gaps?limit=20", headers=bearer(token))).json()
        series = (
            await api.get(
                "/api/v1/analytics/timeseries?bucket=day&metric=episodes", headers=bearer(token)
            )
        ).json()
    return {"token": token, "summary": summary, "gaps": gaps, "episodes": series}


async def open_dashboard(new_page, server: LiveServer, **options: Any) -> Page:
    page = await new_page(1280, 800, goto=False, **options)
    await page.goto(server.url + "/admin/")
    await expect(page.locator("#signin-form")).to_be_visible()
    await page.fill("#email", ADMIN_EMAIL)
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#signin-submit")
    await expect(page.locator("#me")).to_have_text(ADMIN_NAME)
    await expect(page.locator("#card-episodes")).not_to_have_text("–")
    return page


def percent(rate: dict[str, Any]) -> str:
    return f"{rate['value'] * 100:.1f} %"


async def axe_violations(page: Page) -> list[str]:
    await page.evaluate(AXE.read_text())  # not a script tag: the CSP blocks inline scripts
    return await page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .map(v => v.id + ' (' + v.impact + '): '
                  + v.nodes.map(n => n.target.join(' ')).join(', '))"""
    )


async def test_the_dashboard_shows_what_the_analytics_api_returns(new_page, server_with):
    server = await server_with()
    seeded = await seed(server)
    summary, gaps = seeded["summary"], seeded["gaps"]
    assert summary["episodes"]["count"] == len(ANSWERED + ESCALATED + UNANSWERED)
    page = await open_dashboard(new_page, server)

    await expect(page.locator("#card-episodes")).to_have_text(str(summary["episodes"]["count"]))
    await expect(page.locator("#card-containment")).to_have_text(percent(summary["containment"]))
    containment = summary["containment"]
    await expect(page.locator("#note-containment")).to_contain_text(
        f"{containment['numerator']} of {containment['denominator']} episodes"
    )
    await expect(page.locator("#card-escalation")).to_have_text(
        percent(summary["escalation"]["rate"])
    )
    await expect(page.locator("#card-customers")).to_have_text(str(summary["distinctCustomers"]))
    total = summary["messages"]["total"]
    await expect(page.locator("#note-episodes")).to_have_text(f"{total} messages")

    # the episodes chart holds the API's series, day by day
    drawn = await page.evaluate(
        "() => Chart.getChart(document.getElementById('chart-episodes')).data.datasets[0].data"
    )
    assert drawn == [p["value"] for p in seeded["episodes"]["points"]]
    for chart in ("episodes", "escalations", "csat", "waits", "latency", "cost"):
        assert await page.evaluate(
            f"() => !!Chart.getChart(document.getElementById('chart-{chart}'))"
        ), chart

    # the knowledge gaps, largest group first, and the providers' health
    rows = page.locator("#gaps-body tr")
    await expect(rows).to_have_count(len(gaps["groups"]))
    assert gaps["groups"], gaps
    first = gaps["groups"][0]
    await expect(rows.first.locator(".gap__question")).to_have_text(first["question"])
    await expect(rows.first.locator("td.num")).to_have_text(str(first["count"]))
    local = page.locator("#providers-body tr", has_text="local")
    await expect(local.locator(".state")).to_have_text("closed")

    # "add to knowledge base" opens the entry form prefilled with the group's wordings
    await rows.first.get_by_role("button").click()
    dialog = page.locator("#kb-dialog")
    await expect(dialog).to_be_visible()
    questions = await page.input_value("#kb-questions")
    assert questions.splitlines() == [first["question"], *first["examples"]]
    await expect(page.locator("#kb-entry-title")).to_have_value(first["question"])
    await page.fill("#kb-answer", "We do not repair bicycles; a local bike shop can help.")
    await page.click("#kb-save")
    await expect(dialog).to_be_hidden()
    await expect(rows.first.get_by_role("button")).to_have_text("Added")
    name = await page.input_value("#kb-name")
    # the entry trains in the background; then the gap's question finds it
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        for _ in range(120):
            found = await api.get(
                "/api/v1/knowledge/search",
                params={"q": first["question"]},
                headers=bearer(seeded["token"]),
            )
            hits = [hit.get("id") or hit.get("name") for hit in found.json()["hits"]]
            if name in hits:
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"{name} not found: {found.text}")
    await page.screenshot(path="/tmp/supportbot-dashboard.png", full_page=True)


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_axe_finds_no_violations_on_the_dashboard(new_page, live_server, scheme):
    page = await new_page(1280, 800, goto=False, color_scheme=scheme)
    await page.goto(live_server.url + "/admin/")
    await page.click("#signin-submit")  # the sign-in form with its error showing
    await expect(page.locator("#signin-error")).not_to_be_empty()
    assert await axe_violations(page) == []
    await page.fill("#email", ADMIN_EMAIL)
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#signin-submit")
    await expect(page.locator("#providers-body tr").first).to_be_visible()
    assert await axe_violations(page) == []
    await page.screenshot(path=f"/tmp/supportbot-dashboard-{scheme}.png")


async def test_an_agent_account_is_not_let_in(new_page, live_server):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as api:
        login = await api.post(
            "/api/v1/agents/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        res = await api.post(
            "/api/v1/agents",
            json={
                "email": "dash-agent@example.com",
                "name": "Dee",
                "password": "agent-pass-1",
                "role": "agent",
            },
            headers=bearer(login.json()["token"]),
        )
        assert res.status_code in (201, 409), res.text
    page = await new_page(1280, 800, goto=False)
    await page.goto(live_server.url + "/admin/")
    await page.fill("#email", "dash-agent@example.com")
    await page.fill("#password", "agent-pass-1")
    await page.click("#signin-submit")
    await expect(page.locator("#signin-error")).to_contain_text("for admins")
    await expect(page.locator("#dashboard")).to_be_hidden()
