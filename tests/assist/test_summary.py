"""The handoff summary: extractive at once without a model, a model's a moment later with
one (its prompt carries the transcript, never the notes), and a slow or failing model that
delays only the summary, never the handoff."""

from __future__ import annotations

import asyncio
from typing import Any

from services.assist.summary import (
    SUMMARY_PROMPT,
    identifiers_in,
    rank_messages,
    transcript_for_model,
)
from tests.agents.conftest import ADMIN
from tests.assist.conftest import (
    ASSIST_EVENTS,
    Recorder,
    bearer,
    conversation,
    desk_settings,
    handed_over,
    login,
    say,
)
from tests.conftest import TEST_ADMIN_KEY
from tests.notify.conftest import SECRET, Receiver, fast_webhooks, receiver, verify  # noqa: F401

ORDER = "My order ORD-48213 never arrived and I need it before Friday"
ASK = "I want to talk to a human"
MODEL_SUMMARY = {
    "request": "Wants to know where order ORD-48213 is; needed before Friday.",
    "tried": "Asked the assistant, which could not track the parcel.",
    "mood": "negative",
    "identifiers": ["ORD-48213"],
}


def summary_requests(openai_fake: Any) -> list[dict[str, Any]]:
    return [
        r["body"]
        for r in openai_fake.fake.requests
        if openai_fake.fake.task_name(r["body"]) == "handoff_summary"
    ]


def test_identifiers_and_ranking():
    assert identifiers_in(ORDER) == ["ORD-48213"]
    assert identifiers_in("order number 1234567, see ticket #9981") == ["1234567", "9981"]
    assert identifiers_in("I ordered a shirt in 2 sizes") == []
    ranked = rank_messages(["hi", ORDER, "ok thanks", ASK])
    assert ranked[0][1] == 1 and ranked[-1][0] == 0  # the order first, a greeting scores nothing


def test_the_model_prompt_has_the_spoken_lines_and_never_a_note():
    transcript = [
        {"role": "user", "content": ORDER},
        {"role": "assistant", "content": "Let me check."},
        {"role": "note", "content": "INTERNAL-NOTE-7 customer is a reseller"},
        {"role": "system", "content": "Handed over to the team"},
        {"role": "agent", "content": "Hi, I'm on it", "agentName": "Ana"},
    ]
    text = transcript_for_model(transcript)
    assert ORDER in text and "Let me check." in text and "Hi, I'm on it" in text
    assert "INTERNAL-NOTE-7" not in text and "Handed over" not in text


async def test_without_a_model_the_summary_is_extractive_and_rides_the_webhook(
    server_factory: Any,
    receiver: Receiver,  # noqa: F811
):
    """Also: an angry customer reads as frustrated, and a card number is not repeated."""
    srv = await server_factory(
        **desk_settings(
            **fast_webhooks(
                webhook_urls=receiver.url, webhook_secret=SECRET, admin_api_key=TEST_ADMIN_KEY
            )
        )
    )
    async with srv.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        sid = await handed_over(api, "Hello", ORDER, ASK)
        summary = (await conversation(api, admin, sid))["summary"]
        await receiver.wait_until(lambda: len(receiver.accepted()) >= 1)
        angry = await handed_over(
            api, "This is ridiculous, I paid with card 4111 1111 1111 1111 and got nothing!!"
        )
        upset = (await conversation(api, admin, angry))["summary"]

    assert summary["origin"] == "extractive" and summary["provider"] is None
    assert summary["request"] == ORDER  # the most informative message
    assert summary["identifiers"] == ["ORD-48213"]
    assert [r["rule"] for r in summary["reasons"]] == ["requested"]
    assert ORDER in summary["highlights"] and "Hello" not in summary["highlights"]
    assert "human_agent" in [k["id"] for k in summary["knowledge"]]
    assert summary["mood"] in ("neutral", "negative", "positive", "frustrated")
    event = verify(receiver.accepted()[0])
    assert event["type"] == "conversation.escalated"
    assert event["data"]["summary"] == summary
    assert upset["mood"] == "frustrated"  # and a card number is never repeated
    assert "4111" not in str(upset) and "[card 1]" in upset["request"]


async def test_a_model_writes_the_summary_which_reaches_the_console_and_the_api(
    model_server: Any, openai_fake: Any
):
    openai_fake.fake.tasks["handoff_summary"] = MODEL_SUMMARY
    srv = model_server
    async with srv.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        console = await Recorder("/agents", ASSIST_EVENTS).connect(srv.url, {"token": admin})
        try:
            sid = await handed_over(api, ORDER, ASK)
            update = await console.wait_for(
                "conversation-updated",
                lambda d: d["sessionId"] == sid and d["event"] == "summarized",
            )
        finally:
            await console.close()
        summary = (await conversation(api, admin, sid))["summary"]

    for got in (update["summary"], summary):
        assert got["origin"] == "model" and got["provider"] == "openai"
        assert {k: got[k] for k in MODEL_SUMMARY} == MODEL_SUMMARY
        assert [r["rule"] for r in got["reasons"]] == ["requested"]  # the facts stay
    assert update["status"] == "escalated"
    (body,) = summary_requests(openai_fake)
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    assert system == SUMMARY_PROMPT
    assert ORDER in user and ASK in user and "requested" in user
    assert body["response_format"]["json_schema"]["name"] == "handoff_summary"


async def test_the_summary_of_a_later_episode_leaves_the_earlier_notes_out(
    model_server: Any, openai_fake: Any
):
    openai_fake.fake.tasks["handoff_summary"] = MODEL_SUMMARY
    srv = model_server
    async with srv.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        sid = await handed_over(api, ORDER, ASK)
        base = f"/api/v1/agents/conversations/{sid}"
        await api.post(f"{base}/claim", headers=bearer(admin))
        note = {"note": "INTERNAL-NOTE-7 refund already approved"}
        assert (await api.post(f"{base}/notes", json=note, headers=bearer(admin))).is_success
        await api.post(f"{base}/handback", headers=bearer(admin))
        await say(api, sid, "One more thing: order ORD-777 is missing too. Talk to a human please")
        for _ in range(200):
            if len(summary_requests(openai_fake)) == 2:
                break
            await asyncio.sleep(0.05)
    later = summary_requests(openai_fake)[1]["messages"][1]["content"]
    assert "ORD-777" in later and "INTERNAL-NOTE-7" not in later


async def test_a_slow_model_delays_only_the_summary_never_the_handoff(
    model_server: Any, openai_fake: Any
):
    openai_fake.fake.tasks["handoff_summary"] = MODEL_SUMMARY
    openai_fake.fake.task_latency = 30.0  # the summary hangs; answers are quick
    srv = model_server
    async with srv.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        console = await Recorder("/agents", ASSIST_EVENTS).connect(srv.url, {"token": admin})
        try:
            sid = await handed_over(api, ORDER, ASK)  # answered and handed over
            for _ in range(200):  # the model is still writing the summary
                if summary_requests(openai_fake):
                    break
                await asyncio.sleep(0.02)
            now = await conversation(api, admin, sid)
            assert now["conversation"]["status"] == "escalated"
            assert now["summary"]["origin"] == "extractive"
            assert now["summary"]["identifiers"] == ["ORD-48213"]
            await console.wait_for("escalation-needed", lambda d: d["sessionId"] == sid)
            for _ in range(200):  # then SUMMARY_TIMEOUT passes: the extractive one stays
                health = (await api.get("/health", headers={"X-API-Key": TEST_ADMIN_KEY})).json()
                if health["responders"]["openai"]["lastError"] == "timeout":
                    break
                await asyncio.sleep(0.05)
            assert health["responders"]["openai"]["lastError"] == "timeout"
            assert (await conversation(api, admin, sid))["summary"]["origin"] == "extractive"
            assert not [
                d
                for d in console.received["conversation-updated"]
                if d["event"] == "summarized" and d["sessionId"] == sid
            ]
        finally:
            await console.close()


async def test_a_failing_model_leaves_the_extractive_summary(model_server: Any, openai_fake: Any):
    # no task answer configured: the fake's reply does not match the summary's schema
    srv = model_server
    async with srv.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        sid = await handed_over(api, ORDER, ASK)
        for _ in range(200):
            health = (await api.get("/health", headers={"X-API-Key": TEST_ADMIN_KEY})).json()
            if (health["responders"]["openai"]["lastError"] or "").startswith("malformed"):
                break
            await asyncio.sleep(0.05)
        assert health["responders"]["openai"]["lastError"].startswith("malformed task result")
        summary = (await conversation(api, admin, sid))["summary"]
    assert summary["origin"] == "extractive" and summary["identifiers"] == ["ORD-48213"]
