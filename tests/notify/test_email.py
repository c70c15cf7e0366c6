"""On-call e-mail against a real local SMTP server (aiosmtpd on a free port)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from services.notify.mail import EmailSink, SmtpConfig
from tests.agents.conftest import ADMIN, AGENT_EVENTS, Recorder, desk_settings, login
from tests.conftest import free_port
from tests.notify.conftest import Mailbox, Smtp, smtp_settings
from tests.notify.test_webhooks import escalate


async def test_escalation_with_no_agent_online_mails_the_oncall_address(
    server_factory: Any, smtp: Smtp
):
    srv = await server_factory(**desk_settings(**smtp_settings(smtp.port)))
    async with srv.client() as api:
        sid, _ = await escalate(api, "This is urgent, parcel 4711 never arrived")
        [mail] = await smtp.mailbox.wait_for(1)
    assert smtp.mailbox.envelopes == [("bot@example.com", ["oncall@example.com"])]
    assert mail["To"] == "oncall@example.com"
    assert mail["Subject"].startswith("[Support] Escalation with no agent online: keyword")
    text = mail.get_payload(decode=True).decode()
    assert "keyword: urgent" in text
    assert "This is urgent, parcel 4711 never arrived" in text
    assert f"/agent#session={sid}" in text


async def test_no_mail_while_an_agent_is_online(server_factory: Any, smtp: Smtp):
    srv = await server_factory(**desk_settings(**smtp_settings(smtp.port)))
    async with srv.client() as api:
        token = await login(api, ADMIN["email"], ADMIN["password"])
        console = await Recorder("/agents", AGENT_EVENTS).connect(srv.url, {"token": token})
        try:
            await console.wait_for("hello")
            await escalate(api)
            await console.wait_for("escalation-needed")
            await asyncio.sleep(1.0)
            assert smtp.mailbox.messages == []
        finally:
            await console.close()


async def test_a_ticket_is_mailed(server_factory: Any, smtp: Smtp):
    """The no-agent path: escalation mail, then the customer's e-mail makes a ticket."""
    srv = await server_factory(**desk_settings(**smtp_settings(smtp.port)))
    async with srv.client() as api:
        sid, _ = await escalate(api, "I want a refund for order 99, this is urgent")
        res = await api.post(
            f"/api/v1/chat/session/{sid}/contact", json={"email": "cust@example.com"}
        )
        assert res.status_code in (200, 201), res.text
        ticket_id = res.json()["ticketId"]
        mails = await smtp.mailbox.wait_for(2)
    ticket = next(m for m in mails if m["X-Supportbot-Event"] == "ticket.created")
    assert ticket["Subject"] == f"[Support] New ticket {ticket_id} from cust@example.com"
    text = ticket.get_payload(decode=True).decode()
    assert "Reply to: cust@example.com" in text
    assert "I want a refund for order 99" in text
    assert f"/agent#session={sid}" in text


async def test_retries_until_the_mail_server_answers_and_logs_no_secrets(
    caplog: pytest.LogCaptureFixture,
):
    port = free_port()
    sink = EmailSink(
        SmtpConfig(
            host="127.0.0.1",
            port=port,
            tls="none",
            user=None,
            password="smtp-secret-pw",
            sender="bot@example.com",
            to="oncall@example.com",
            timeout=2,
        ),
        presence=None,
        transcripts=None,
        retry_delays=[0.3, 0.3, 5.0],
    )
    await sink.start()
    caplog.set_level(logging.INFO, logger="services.notify.mail")
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    try:
        await sink.publish(
            "ticket.created",
            {
                "ticketId": "t1",
                "sessionId": "s1",
                "userId": "u1",
                "email": "cust@example.com",
                "reasons": [{"rule": "requested", "detail": "a person"}],
                "createdAt": "2026-01-01T00:00:00Z",
            },
        )
        await sink.publish("conversation.rated", {"sessionId": "s1"})  # not mailed
        await asyncio.sleep(0.1)  # the first attempt fails: nothing listens yet
        controller.start()
        [mail] = await mailbox.wait_for(1)
        assert "requested: a person" in mail.get_payload(decode=True).decode()
    finally:
        await sink.aclose()
        controller.stop()
    assert sink.sent == 1
    assert "on-call e-mail attempt failed" in caplog.text
    assert "smtp-secret-pw" not in caplog.text
