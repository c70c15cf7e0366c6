"""Privacy: redaction (logs, model prompts), erasure, export, retention, key rotation.
Real Redis, real servers, the fake OpenAI server on the wire."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from services.container import Container
from services.crypto import Sealer, new_key
from services.guard.redact import Redactor, iban_ok, luhn_ok, redact
from services.keys import PROPOSALS, session_key, session_part, ticket_key
from services.privacy import DAY_MS
from services.rotate import Rotator
from services.store import now_ms
from services.tickets import Ticket
from tests.conftest import TEST_KEY, make_settings, new_session, unique_prefix
from tests.responders.conftest import _openai_server, openai_fake  # noqa: F401

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
PHONE = "+1 650-253-0000"
IBAN = "DE89 3704 0044 0532 0130 00"
PII_MESSAGE = f"My card {CARD} was charged twice, write to {EMAIL} or call {PHONE}; IBAN {IBAN}"
RAW = ("4111", "1111 1111", "jane.doe", "example.com", "253-0000", "3704 0044", "DE89")
ADMIN_KEY = "privacy-admin-key"
ADMIN = {"X-API-Key": ADMIN_KEY}
NOTHING_SWEPT = {"sessions": 0, "tickets": 0, "proposals": 0}


def leaks(text: str) -> list[str]:
    return [raw for raw in RAW if raw in text]


async def keys_of(redis: Redis, prefix: str) -> dict[str, bytes]:
    """Every key under the prefix with its whole content, for searching."""
    out: dict[str, bytes] = {}
    async for raw in redis.scan_iter(match=f"{prefix}*", count=500):
        key = raw.decode()
        kind = (await redis.type(key)).decode()
        if kind == "hash":
            items = await redis.hgetall(key)
            out[key] = b" ".join(k + b"=" + v for k, v in items.items())
        elif kind == "list":
            out[key] = b" ".join(await redis.lrange(key, 0, -1))
        elif kind == "set":
            out[key] = b" ".join(await redis.smembers(key))
        elif kind == "zset":
            out[key] = b" ".join(await redis.zrange(key, 0, -1))
        elif kind == "string":
            out[key] = await redis.get(key) or b""
        else:
            out[key] = b""
    return out


# -- redaction -----------------------------------------------------------------------
def test_each_kind_is_found_checked_and_numbered_consistently():
    r = Redactor("US")
    text = r.redact(PII_MESSAGE + f" (again: {EMAIL.upper()}, 4111-1111-1111-1111)")
    assert leaks(text) == []
    assert "[card 1]" in text and "[email 1]" in text and "[phone 1]" in text
    assert "[iban 1]" in text and "[card 2]" not in text and "[email 2]" not in text
    assert r.redact(f"mail {EMAIL}") == "mail [email 1]"  # same value, same placeholder
    # checksums: numbers that only look like cards or IBANs stay
    assert redact("order 4111 1111 1111 1112 and DE89 3704 0044 0532 0130 01") == (
        "order 4111 1111 1111 1112 and DE89 3704 0044 0532 0130 01"
    )
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")
    # the default region reads numbers without a country code
    assert redact("call 030 1234567 please", region="DE") == "call [phone 1] please"
    assert (
        redact("no personal data, order 12345, 3 items") == "no personal data, order 12345, 3 items"
    )


async def test_logs_at_debug_carry_none_of_the_pii(server_factory, openai_fake, capsys):  # noqa: F811
    """Even with redaction for the model off (so the OpenAI SDK's DEBUG request log holds
    the raw message), no log line carries the customer's personal data."""
    openai_fake.fake.set(answer="Sorry about that.", confidence=0.9)
    srv = await server_factory(
        log_level="DEBUG",
        redact_pii_for_llm=False,
        openai_api_key="sk-test",
        openai_base_url=openai_fake.openai_url,
    )
    async with srv.client() as api:
        sid = await new_session(api)
        res = await api.post(
            "/api/v1/chat/message", json={"sessionId": sid, "message": PII_MESSAGE}
        )
        assert res.status_code == 200
    log = logging.getLogger("tests.guard")
    log.debug("customer wrote %s", PII_MESSAGE, extra={"detail": {"text": PII_MESSAGE}})
    try:
        raise ValueError(PII_MESSAGE)
    except ValueError:
        log.exception("failed on %s", EMAIL)
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(lines) > 5 and any(line["level"] == "debug" for line in lines)
    assert any("[card 1]" in line["event"] for line in lines)
    assert leaks(out) == []
    # the provider did get the raw text (redaction for the model is off here)
    assert CARD in json.dumps(openai_fake.fake.requests[-1]["body"])


async def test_the_model_never_sees_the_raw_card_or_e_mail(server_factory, openai_fake):  # noqa: F811
    openai_fake.fake.set(answer="I can see [card 1] was charged twice.", confidence=0.9)
    srv = await server_factory(openai_api_key="sk-test", openai_base_url=openai_fake.openai_url)
    async with srv.client() as api:
        sid = await new_session(api)
        for message in (PII_MESSAGE, f"Did you get my e-mail {EMAIL}?"):
            res = await api.post(
                "/api/v1/chat/message", json={"sessionId": sid, "message": message}
            )
            assert res.json()["provider"] == "openai"
        sent = [json.dumps(r["body"]) for r in openai_fake.fake.requests]
        assert len(sent) == 2 and all(leaks(body) == [] for body in sent)
        assert "[card 1]" in sent[0] and "[email 1]" in sent[1]
        # one numbering across the history and the new message
        assert sent[1].count("[email 1]") == 2
        # the stored transcript keeps what the customer wrote
        history = (await api.get(f"/api/v1/chat/history/{sid}")).json()["history"]
        assert history[0]["content"] == PII_MESSAGE


async def test_with_redaction_off_the_model_gets_the_text_as_written(server_factory, openai_fake):  # noqa: F811
    srv = await server_factory(
        redact_pii_for_llm=False, openai_api_key="sk-test", openai_base_url=openai_fake.openai_url
    )
    async with srv.client() as api:
        sid = await new_session(api)
        await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": PII_MESSAGE})
    body = json.dumps(openai_fake.fake.requests[-1]["body"], ensure_ascii=False)
    assert CARD in body and EMAIL in body


# -- erasure and export ----------------------------------------------------------------
def closed_hours() -> str:
    start = (datetime.now(UTC) + timedelta(hours=3)).hour
    end = "24:00" if start == 23 else f"{start + 1:02d}:00"
    return f"Mon-Sun {start:02d}:00-{end}"


async def session_with_ticket(api: Any, user_id: str) -> tuple[str, str]:
    sid = await new_session(api, user_id)
    message = f"urgent! {PII_MESSAGE}"
    body = (
        await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": message})
    ).json()
    assert body["contactRequested"] is True, body  # the team is away: an e-mail is asked for
    saved = await api.post(f"/api/v1/chat/session/{sid}/contact", json={"email": EMAIL})
    assert saved.status_code == 200, saved.text
    return sid, saved.json()["ticketId"]


async def test_erasing_a_session_leaves_no_key_or_value_of_it(server_factory, redis):
    srv = await server_factory(business_hours=closed_hours())
    prefix = srv.settings.redis_key_prefix
    async with srv.client() as api:
        sid, ticket = await session_with_ticket(api, "erase-me")
        other, other_ticket = await session_with_ticket(api, "someone-else")
        before = await keys_of(redis, prefix)
        assert any(sid in k for k in before) and ticket_key(prefix, ticket) in before
        url = f"/api/v1/chat/session/{sid}"
        assert (await api.delete(url)).status_code == 204
        res = await api.delete(url)
        assert res.status_code == 404 and res.headers["content-type"] == "application/problem+json"
        assert (await api.get(f"/api/v1/chat/history/{sid}")).status_code == 404
        assert (await api.get(f"{url}/export")).status_code == 404
        after = await keys_of(redis, prefix)
        assert [k for k in after if sid in k or ticket in k] == []
        assert [k for k, v in after.items() if sid.encode() in v or ticket.encode() in v] == []
        # the other customer's conversation and ticket are untouched
        assert ticket_key(prefix, other_ticket) in after
        assert (await api.get(f"/api/v1/chat/history/{other}")).status_code == 200


async def test_an_admin_erases_every_session_and_ticket_of_a_user(server_factory, redis):
    srv = await server_factory(business_hours=closed_hours(), admin_api_key=ADMIN_KEY)
    prefix = srv.settings.redis_key_prefix
    async with srv.client() as api:
        first, t1 = await session_with_ticket(api, "user-42")
        second = await new_session(api, "user-42")
        keep = await new_session(api, "user-7")
        before = await keys_of(redis, prefix)
        index = [k for k in before if k.startswith(f"{prefix}user:")]
        assert len(index) == 2 and all("user-42" not in k for k in index)  # reveals nothing
        assert (await api.delete("/api/v1/admin/users/user-42")).status_code == 401
        res = await api.delete("/api/v1/admin/users/user-42", headers=ADMIN)
        assert res.status_code == 200 and res.json() == {"success": True, "sessions": 2}
        after = await keys_of(redis, prefix)
        gone = (first, second, t1)
        assert [k for k in after if any(g in k for g in gone)] == []
        assert [k for k, v in after.items() if any(g.encode() in v for g in gone)] == []
        assert len([k for k in after if k.startswith(f"{prefix}user:")]) == 1  # user-7's
        assert (await api.get(f"/api/v1/chat/history/{keep}")).status_code == 200
        again = await api.delete("/api/v1/admin/users/user-42", headers=ADMIN)
        assert again.json() == {"success": True, "sessions": 0}


async def test_the_customer_exports_the_transcript_as_json_and_text(server_factory):
    srv = await server_factory()
    async with srv.client() as api:
        sid = await new_session(api, "exporter")
        await api.post(
            "/api/v1/chat/message",
            json={"sessionId": sid, "message": "How long does shipping take?"},
        )
        res = await api.get(f"/api/v1/chat/session/{sid}/export")
        assert res.status_code == 200 and res.headers["content-type"] == "application/json"
        body = res.json()
        assert body["sessionId"] == sid and body["userId"] == "exporter"
        assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
        assert body["messages"][0]["content"] == "How long does shipping take?"
        text = await api.get(f"/api/v1/chat/session/{sid}/export", params={"format": "text"})
        assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
        assert "user: How long does shipping take?" in text.text and sid in text.text
        bad = await api.get(f"/api/v1/chat/session/{sid}/export", params={"format": "pdf"})
        assert bad.status_code == 400


# -- retention -------------------------------------------------------------------------
async def test_retention_removes_old_resolved_conversations_and_closed_tickets_only(redis):
    settings = make_settings(transcript_retention_days=1, redis_key_prefix=unique_prefix("ret"))
    prefix = settings.redis_key_prefix
    container = Container(settings)
    await container.start()
    try:
        chat, tickets, privacy = container.chat, container.tickets, container.privacy
        assert chat is not None and tickets is not None and privacy is not None
        resolved, active, escalated = [
            (await chat.start_session(user_id=f"u{i}")).id for i in range(3)
        ]
        for sid in (resolved, active, escalated):
            await chat.sessions.append(sid, {"role": "user", "content": "hi", "timestamp": "t"})
        await redis.hset(session_key(prefix, resolved), "status", "resolved")
        await redis.hset(session_key(prefix, escalated), "status", "escalated")
        now = now_ms()
        made = {
            "old-closed": Ticket("old-closed", resolved, 1, "closed", now, {}),
            "old-open": Ticket("old-open", resolved, 1, "open", now, {}),  # still unanswered
            "new-closed": Ticket("new-closed", active, 1, "closed", now + 2 * DAY_MS, {}),
        }
        for ticket in made.values():
            await tickets._save(ticket)
        # half a day later nothing is due yet
        assert await privacy.sweep(now=now + DAY_MS // 2) == NOTHING_SWEPT
        assert await privacy.sweep(now=now + 2 * DAY_MS) == {
            **NOTHING_SWEPT,
            "sessions": 1,
            "tickets": 1,
        }
        left = await keys_of(redis, prefix)
        assert [k for k in left if resolved in k] == []
        assert ticket_key(prefix, "old-closed") not in left
        for kept in ("old-open", "new-closed"):
            assert ticket_key(prefix, kept) in left
        for sid in (active, escalated):
            assert session_key(prefix, sid) in left
            assert session_part(prefix, sid, "messages") in left
        # a second instance sweeping at the same moment finds the lock taken
        await redis.set(f"{prefix}retention:lock", "other", px=5000)
        assert await privacy.sweep(now=now + 9 * DAY_MS) == NOTHING_SWEPT
    finally:
        await container.aclose()
        async for key in redis.scan_iter(match=f"{prefix}*"):
            await redis.delete(key)


@dataclass(frozen=True)
class Agent:
    id: str = "agent-1"
    name: str = "Ada"
    role: str = "agent"


async def test_erasure_and_retention_remove_the_knowledge_proposals_of_a_conversation(redis):
    settings = make_settings(transcript_retention_days=1, redis_key_prefix=unique_prefix("prop"))
    prefix = settings.redis_key_prefix
    container = Container(settings)
    await container.start()
    try:
        chat, proposals, privacy = container.chat, container.proposals, container.privacy
        assert chat is not None and proposals is not None and privacy is not None

        async def proposed(user_id: str) -> tuple[str, str]:
            sid = (await chat.start_session(user_id=user_id)).id
            for role, text in (("user", f"question of {user_id}"), ("agent", "the answer")):
                entry = {"id": f"{role}-{user_id}", "role": role, "content": text, "timestamp": "t"}
                await chat.sessions.append(sid, entry)
            return sid, (await proposals.propose(sid, Agent(), f"agent-{user_id}"))["id"]

        erased, kept = await proposed("erased"), await proposed("kept")
        user_sessions = [await proposed("user-9"), await proposed("user-9")]
        assert (await proposals.get(erased[1]))["sessionId"] == erased[0]
        await privacy.erase_session(erased[0])
        left = [p["sessionId"] for p in await proposals.find()]
        assert erased[0] not in left and kept[0] in left
        assert await privacy.erase_user("user-9") == 2
        assert [p["id"] for p in await proposals.find()] == [kept[1]]
        after = await keys_of(redis, prefix)
        gone = [erased[0], erased[1], *(part for pair in user_sessions for part in pair)]
        assert [k for k, v in after.items() if any(g in k or g.encode() in v for g in gone)] == []
        # retention: a proposal older than TRANSCRIPT_RETENTION_DAYS goes, a newer one stays
        newer = (await proposed("newer"))[1]
        now = now_ms()
        await redis.zadd(f"{prefix}{PROPOSALS}index", {newer: now + 2 * DAY_MS})
        assert await privacy.sweep(now=now + DAY_MS // 2) == NOTHING_SWEPT
        assert await privacy.sweep(now=now + 2 * DAY_MS) == {**NOTHING_SWEPT, "proposals": 1}
        assert [p["id"] for p in await proposals.find()] == [newer]
        assert f"{prefix}{PROPOSALS}proposal:{kept[1]}" not in await keys_of(redis, prefix)
    finally:
        await container.aclose()
        async for key in redis.scan_iter(match=f"{prefix}*"):
            await redis.delete(key)


# -- key rotation ------------------------------------------------------------------------
async def test_rotation_under_traffic_loses_nothing(server_factory, redis):
    prefix = unique_prefix("rot")
    newer = new_key()
    old = await server_factory(redis_key_prefix=prefix, session_encryption_key=TEST_KEY)
    sids = []
    async with old.client() as api:
        for i in range(6):
            sid = await new_session(api, f"rot-{i}")
            for n in range(4):
                await api.post(
                    "/api/v1/chat/message", json={"sessionId": sid, "message": f"question {n}"}
                )
            sids.append(sid)
    both = await server_factory(
        redis_key_prefix=prefix, session_encryption_key=f"{newer},{TEST_KEY}"
    )
    sealer = Sealer.from_setting(f"{newer},{TEST_KEY}")
    rotator = Rotator(redis, prefix, sealer, batch=2)

    async def traffic() -> None:
        async with both.client() as api:
            for n in range(4, 8):
                for sid in sids:
                    res = await api.post(
                        "/api/v1/chat/message", json={"sessionId": sid, "message": f"question {n}"}
                    )
                    assert res.status_code == 200, res.text

    progress, _ = await asyncio.gather(rotator.run(), traffic())
    assert progress.resealed > 0 and progress.unreadable == 0
    await rotator.run()  # a second pass finds everything current (and resumes from nothing)
    assert await redis.get(f"{prefix}rotate:cursor") is None
    # only the new key now: every session, message and user index entry is there
    new_only = await server_factory(
        redis_key_prefix=prefix, session_encryption_key=newer, admin_api_key=ADMIN_KEY
    )
    async with new_only.client() as api:
        for i, sid in enumerate(sids):
            body = (await api.get(f"/api/v1/chat/history/{sid}")).json()
            questions = [m["content"] for m in body["history"] if m["role"] == "user"]
            assert questions == [f"question {n}" for n in range(8)]
            assert body["sessionData"]["userId"] == f"rot-{i}"
        res = await api.delete("/api/v1/admin/users/rot-0", headers=ADMIN)
        assert res.json()["sessions"] == 1


async def test_an_interrupted_rotation_resumes_from_its_cursor(server_factory, redis):
    prefix = unique_prefix("rot")
    srv = await server_factory(redis_key_prefix=prefix, session_encryption_key=TEST_KEY)
    async with srv.client() as api:
        sids = [await new_session(api, f"r{i}") for i in range(20)]
    sealer = Sealer.from_setting(f"{new_key()},{TEST_KEY}")
    cursor, _ = await redis.scan(0, match=f"{prefix}*", count=5)
    await redis.set(f"{prefix}rotate:cursor", cursor)
    resumed = await Rotator(redis, prefix, sealer, batch=5).run()
    full = await Rotator(redis, prefix, sealer, batch=5).run()
    assert resumed.resealed + full.resealed == len(sids)  # every data field once
    assert full.current >= len(sids) - resumed.resealed
