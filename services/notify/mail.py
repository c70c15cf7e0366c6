"""E-mail to the on-call address (ONCALL_EMAIL) over SMTP (aiosmtplib): for an escalation
when no agent is online, and for every new ticket.

An event sink whose `publish` only puts the event on an in-process queue; a background task
checks presence, writes the message and sends it, retrying on SMTP_RETRY_SCHEDULE, so a slow
or broken mail server never touches a customer's reply. Failures are logged without the
password or the message body. A mail still waiting for a retry is lost if the instance
stops (webhooks are the durable channel).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal, Protocol

import aiosmtplib

log = logging.getLogger(__name__)

MAIL_EVENTS = ("conversation.escalated", "ticket.created")
QUEUE_SIZE = 1000
PREVIEW = 300


class Presence(Protocol):
    def online_count(self) -> Awaitable[int]: ...


class Transcripts(Protocol):
    def transcript(
        self, session_id: str, start: int = 0, end: int = -1
    ) -> Awaitable[list[dict[str, Any]]]: ...


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int | None
    tls: Literal["none", "starttls", "tls"]
    user: str | None
    password: str | None
    sender: str
    to: str
    timeout: float = 15.0

    @property
    def resolved_port(self) -> int:
        return self.port or {"none": 25, "starttls": 587, "tls": 465}[self.tls]


class EmailSink:
    def __init__(
        self,
        config: SmtpConfig,
        *,
        presence: Presence | None,
        transcripts: Transcripts | None,
        retry_delays: Sequence[float],
    ) -> None:
        self.config = config
        self.presence = presence
        self.transcripts = transcripts
        self.retry_delays = list(retry_delays)
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self.sent = 0

    async def publish(self, event_type: str, data: dict[str, Any]) -> None:
        if event_type not in MAIL_EVENTS:
            return
        try:
            self._queue.put_nowait((event_type, data))
        except asyncio.QueueFull:
            log.error("e-mail queue full; dropped", extra={"event_type": event_type})

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="oncall-email")
        log.info(
            "on-call e-mail enabled",
            extra={
                "smtp": f"{self.config.host}:{self.config.resolved_port}",
                "tls": self.config.tls,
            },
        )

    async def aclose(self) -> None:
        tasks = [t for t in (self._task, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._queue.empty() or self._sending:
            log.warning("e-mails not yet sent at shutdown were dropped")
        self._task = None

    async def _run(self) -> None:
        while True:
            event_type, data = await self._queue.get()
            task = asyncio.create_task(self._handle(event_type, data))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _handle(self, event_type: str, data: dict[str, Any]) -> None:
        try:
            message = await self.compose(event_type, data)
            if message is not None:
                await self._send_with_retries(message, event_type)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("on-call e-mail could not be prepared", extra={"event_type": event_type})

    async def compose(self, event_type: str, data: dict[str, Any]) -> EmailMessage | None:
        """The message for an event; None when no e-mail is due (an agent is online)."""
        session_id = str(data.get("sessionId") or "")
        if event_type == "conversation.escalated":
            online = await self.presence.online_count() if self.presence else 0
            if online > 0:
                return None
            conversation = data.get("conversation") or {}
            reasons = conversation.get("reasons") or []
            user = conversation.get("userId") or ""
            subject = f"Escalation with no agent online: {_reason_summary(reasons)}"
            intro = "A conversation was handed over to the team and no agent is online."
            lines = [f"Session: {session_id}", f"Customer: {user or 'unknown'}"]
        else:
            reasons = data.get("reasons") or []
            subject = f"New ticket {data.get('ticketId', '')} from {data.get('email', '')}".strip()
            intro = "A customer left a ticket for the team to answer."
            lines = [
                f"Ticket: {data.get('ticketId', '')}",
                f"Session: {session_id}",
                f"Customer: {data.get('userId') or 'unknown'}",
                f"Reply to: {data.get('email', '')}",
                f"Created: {data.get('createdAt', '')}",
            ]
        preview = await self._last_customer_message(session_id)
        body = [intro, "", *lines, "", "Reasons:"]
        body += [f"  - {_reason_text(r)}" for r in reasons] or ["  - (none given)"]
        body += ["", "Last customer message:", f"  {preview}" if preview else "  (none)"]
        body += ["", f"Open it in the agent console: /agent#session={session_id}", ""]
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = self.config.to
        message["Subject"] = f"[Support] {subject}"
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="supportbot")
        message["X-Supportbot-Event"] = event_type
        message.set_content("\n".join(body))
        return message

    async def _last_customer_message(self, session_id: str) -> str:
        if not session_id or self.transcripts is None:
            return ""
        try:
            entries = await self.transcripts.transcript(session_id, -30, -1)
        except Exception as exc:  # an expired session still gets its e-mail
            log.warning("no transcript for the e-mail", extra={"error": type(exc).__name__})
            return ""
        for entry in reversed(entries):
            if entry.get("role") == "user":
                text = " ".join(str(entry.get("content", "")).split())
                return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"
        return ""

    async def _send_with_retries(self, message: EmailMessage, event_type: str) -> None:
        c = self.config
        for attempt, delay in enumerate([0.0, *self.retry_delays], start=1):
            if delay:
                await asyncio.sleep(delay)
            try:
                await aiosmtplib.send(
                    message,
                    hostname=c.host,
                    port=c.resolved_port,
                    username=c.user,
                    password=c.password,
                    use_tls=c.tls == "tls",
                    start_tls=c.tls == "starttls",
                    timeout=c.timeout,
                )
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                log.warning(
                    "on-call e-mail attempt failed",
                    extra={
                        "event_type": event_type,
                        "attempt": attempt,
                        "error": type(exc).__name__,
                    },
                )
                continue
            self.sent += 1
            log.info("on-call e-mail sent", extra={"event_type": event_type, "attempt": attempt})
            return
        log.error("on-call e-mail failed for good", extra={"event_type": event_type})


def _reason_text(reason: Any) -> str:
    if isinstance(reason, dict):
        rule, detail = reason.get("rule", ""), reason.get("detail", "")
        return f"{rule}: {detail}" if detail else str(rule)
    return str(reason)


def _reason_summary(reasons: list[Any]) -> str:
    return ", ".join(_reason_text(r) for r in reasons)[:120] or "handed over"
