"""Browser-test fixtures: the real server started the way operators start it (uvicorn in a
subprocess, on a free port, with its own Redis key prefix, no LLM keys and a first admin from
ADMIN_EMAIL/ADMIN_PASSWORD), one headless Debian Chromium for the whole run, and a fresh
browser context (fresh storage, so a fresh conversation and no sign-in) per test. A pair of
instances sharing one Redis prefix and keys is there for the tests that need two."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Frame, Page, WebSocketRoute, async_playwright
from redis.asyncio import Redis

from tests.conftest import GENEROUS_LIMITS, redis_url
from tests.live_server import LiveServer, start_server, stop

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DEMO_KB = ROOT / "services" / "knowledge" / "demo" / "shop.yaml"
ADMIN_EMAIL = "admin@supportbot.test"
ADMIN_PASSWORD = "browser-tests-admin-password"
ADMIN_NAME = "Administrator"  # what the server calls the admin it creates at start-up


def server_env(prefix: str) -> dict[str, str]:
    """The environment plus what the page tests rely on. Explicit values win over a
    developer's `.env`; empty LLM keys mean "not configured", so the embedded responder answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GEMINI_"))}
    env.update(
        {
            "APP_ENV": "test",
            "REDIS_URL": redis_url(),
            "REDIS_KEY_PREFIX": prefix,
            "SESSION_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "OPENAI_API_KEY": "",
            "OPENAI_BASE_URL": "",
            "GEMINI_API_KEY": "",
            "GEMINI_BASE_URL": "",
            "KNOWLEDGE_BASE_PATH": str(DEMO_KB),
            "KNOWLEDGE_ENGINE": "classical",
            "ESCALATION_KEYWORDS": "urgent,emergency,complaint,supervisor,manager,cancel,refund",
            "MAX_MESSAGE_LENGTH": "4000",
            "LOG_LEVEL": "INFO",
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            # Live agent sockets re-check their sign-in every PRESENCE_TTL/3 seconds.
            "PRESENCE_TTL": "6",
            # No language detection: its models double a server's start-up (a detection
            # process loads them before /health answers), and no page test needs it; it has
            # its own tests (tests/i18n), in-process.
            "DETECT_LANGUAGES": "",
        }
    )
    # Every page of the suite comes from 127.0.0.1: the rate limits have their own tests.
    env.update({name.upper(): str(value) for name, value in GENEROUS_LIMITS.items()})
    return env


async def delete_prefix(prefix: str) -> None:
    redis = Redis.from_url(redis_url())
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


async def launch(env: dict[str, str], log_path: Path) -> LiveServer:
    """`uvicorn app:create_app --factory` as a subprocess on a free port, once it is healthy."""
    return await start_server(env, log_path)


@pytest.fixture(scope="session")
async def live_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    """The server every page test uses; stopped and its keys deleted after."""
    prefix = f"test:browser:{uuid.uuid4().hex}:"
    srv = await launch(server_env(prefix), tmp_path_factory.mktemp("browser") / "server.log")
    try:
        yield srv
    finally:
        await stop(srv.process)
        await delete_prefix(prefix)


@pytest.fixture(scope="session")
async def server_pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """Two instances as behind a load balancer: one Redis prefix, one encryption key (so one
    token key), Socket.IO fanned out through Redis. Started only for the tests that ask."""
    prefix = f"test:browser-pair:{uuid.uuid4().hex}:"
    env = server_env(prefix)
    logs = tmp_path_factory.mktemp("browser-pair")
    first = await launch(env, logs / "first.log")
    try:
        second = await launch(env, logs / "second.log")
    except BaseException:
        await stop(first.process)
        await delete_prefix(prefix)
        raise
    try:
        yield first, second
    finally:
        await asyncio.gather(stop(first.process), stop(second.process))
        await delete_prefix(prefix)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not await asyncio.to_thread(Path(CHROMIUM).exists):
        pytest.fail(
            f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
        )
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


async def wait_for_js(target: Page | Frame, expression: str, timeout: float = 30) -> Any:
    """Poll `expression` in the page until it is truthy; its value. Not wait_for_function:
    the pages' CSP (no 'unsafe-eval') refuses its compiled predicate whenever the first check
    is false (a page error, and on a busy machine a failed test)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await target.evaluate(expression)):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        await asyncio.sleep(0.05)
    return value


@dataclass
class PageProblems:
    """Uncaught exceptions and console errors seen on a page; a test ends with none."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"),
        )


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
async def new_page(browser: Browser, live_server: LiveServer, page_problems: PageProblems):
    """Open the chat page in a fresh context; `await new_page(width=..., ...)`."""
    contexts = []

    async def open_page(
        width: int = 1000, height: int = 800, *, goto: bool = True, **context_options
    ):
        context = await browser.new_context(
            viewport={"width": width, "height": height}, **context_options
        )
        contexts.append(context)
        page = await context.new_page()
        page_problems.watch(page)
        if goto:
            await page.goto(live_server.url + "/")
        return page

    yield open_page
    for context in contexts:
        await context.close()
    assert page_problems.errors == [], page_problems.errors


@pytest.fixture
async def page(new_page) -> Page:
    return await new_page()


@pytest.fixture
async def server_with(tmp_path_factory: pytest.TempPathFactory):
    """`await server_with(ROUTING="round_robin", ...)`: an instance of its own with those
    settings (environment variables, as operators set them); stopped after the test."""
    started: list[LiveServer] = []

    async def start(**settings: str) -> LiveServer:
        prefix = f"test:browser-own:{uuid.uuid4().hex}:"
        env = server_env(prefix)
        env.update(settings)
        srv = await launch(env, tmp_path_factory.mktemp("browser-own") / "server.log")
        started.append(srv)
        return srv

    yield start
    await asyncio.gather(*(stop(srv.process) for srv in started))
    for srv in started:
        await delete_prefix(srv.prefix)


class SocketTap:
    """Routes the page's Socket.IO WebSocket through the test: frames pass through both
    ways; the test can inject server events and hold back the page's events."""

    def __init__(self) -> None:
        self.routes: list[WebSocketRoute] = []
        self.hold: set[str] = set()
        self.held: list[str] = []

    async def install(self, page: Page) -> None:
        await page.route_web_socket(re.compile(r"/socket\.io/"), self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if isinstance(message, str) and any(message.startswith(f'42["{e}"') for e in self.hold):
                self.held.append(message)
                return
            server.send(message)

        ws.on_message(from_page)
        self.routes.append(ws)

    def emit(self, event: str, data: dict) -> None:
        """A Socket.IO event as if the server had sent it (Engine.IO message + EVENT packet)."""
        self.routes[-1].send("42" + json.dumps([event, data]))


@pytest.fixture
async def tapped(new_page, live_server):
    tap = SocketTap()
    page = await new_page(goto=False)
    await tap.install(page)
    await page.goto(live_server.url + "/")
    return page, tap
