"""Real receivers for notifications: a local HTTP server (Starlette on uvicorn, on a free
port) that records webhook requests and can fail, hang or be switched off, and a local SMTP
server (aiosmtpd) that records mail."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import free_port

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes


def fast_webhooks(**overrides: Any) -> dict[str, Any]:
    """Server settings for webhook tests: quick polling and a quick retry schedule."""
    return {
        "webhook_retry_schedule": "0.3s,0.3s,0.3s,0.3s",
        "webhook_retry_jitter": 0.1,
        "webhook_poll_interval": 0.1,
        "webhook_timeout": 3.0,
        "webhook_claim_idle": 6.0,
        **overrides,
    }


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """A webhook receiver. `mode`: "ok", "fail" (500) or "hang"; `fail_first` failures first."""

    port: int
    mode: str = "ok"
    fail_first: int = 0
    hits: list[Hit] = field(default_factory=list)
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None
    _new: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return self.at("/hook")

    def at(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        if self.mode == "hang":  # until the receiver stops
            await self._release.wait()
            return Response(b"", 503)
        failing = self.mode == "fail" or self.fail_first > 0
        self.fail_first = max(0, self.fail_first - 1)
        status = 500 if failing else 204
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.hits.append(Hit(request.url.path, headers, body, status))
        self._new.set()
        return Response(b"nope" if failing else b"", status)

    async def start(self) -> Receiver:
        app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
            timeout_graceful_shutdown=1,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self._release.set()
            self.server.should_exit = True
            self.server.force_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.task, 10)
            self.server = self.task = None

    def accepted(self, path: str | None = None) -> list[Hit]:
        return [h for h in self.hits if h.status < 300 and path in (None, h.path)]

    async def wait_until(self, check: Callable[[], bool], timeout: float = 20) -> None:
        async def loop() -> None:
            while not check():
                self._new.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), 0.2)

        await asyncio.wait_for(loop(), timeout)


def verify(hit: Hit, secret: str = SECRET) -> dict[str, Any]:
    """The receiving side's check, with the standardwebhooks library."""
    return dict(Webhook(secret).verify(hit.body, hit.headers))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = await Receiver(free_port()).start()
    yield rec
    await rec.stop()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    async def wait_for(self, n: int, timeout: float = 15) -> list[Message]:
        """The first n messages (they arrive on the SMTP server's own thread, so poll)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.messages)} of {n} e-mails arrived")
            await asyncio.sleep(0.05)
        return self.messages


@dataclass
class Smtp:
    port: int
    mailbox: Mailbox


@pytest.fixture
def smtp() -> Any:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield Smtp(port, mailbox)
    controller.stop()


def smtp_settings(port: int, **overrides: Any) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_tls": "none",
        "smtp_from": "Support Bot <bot@example.com>",
        "oncall_email": "oncall@example.com",
        "smtp_retry_schedule": "0.2s,0.2s",
        **overrides,
    }
