"""Reply suggestions on the demo knowledge base (the right entry first, none for gibberish),
over REST and the /agents socket; the model's draft (never from notes); the used-suggestion
counter and its domain event; and a reply proposed as knowledge, accepted by an admin, that
then answers the question."""

from __future__ import annotations

import asyncio
from typing import Any

from services.assist.suggestions import Suggestions
from services.events import Events
from services.metrics import Metrics
from tests.agents.conftest import ADMIN
from tests.assist.conftest import ASSIST_EVENTS, Recorder, bearer, claimed, login, say
from tests.conftest import TEST_ADMIN_KEY

ASK = "I want to talk to a human"
KNOWN = {
    "How do I return an item?": "return_policy",
    "Where is my order?": "order_status",
    "Can I change my delivery address?": "change_address",
    "What are your opening hours?": "contact_hours",
}
ADMIN_KEY = {"X-API-Key": TEST_ADMIN_KEY}


async def suggestions(api: Any, token: str, sid: str) -> list[dict[str, Any]]:
    res = await api.get(f"/api/v1/agents/conversations/{sid}/suggestions", headers=bearer(token))
    assert res.status_code == 200, res.text
    return list(res.json()["suggestions"])


async def test_known_questions_get_the_right_entry_first_and_gibberish_none(plain_server: Any):
    async with plain_server.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        sid = await claimed(api, admin, ASK)
        assert await suggestions(api, admin, sid) == []  # "a person, please" has no answer
        for question, entry in KNOWN.items():
            await say(api, sid, question)
            found = await suggestions(api, admin, sid)
            assert 1 <= len(found) <= 3, found
            first = found[0]
            assert first["origin"] == "knowledge" and first["sources"][0]["id"] == entry
            assert first["id"] == f"kb:{entry}" and first["text"] and first["confidence"] > 0.5
        await say(api, sid, "blorf the wibble zzkq")
        assert await suggestions(api, admin, sid) == []
        missing = await api.get(
            "/api/v1/agents/conversations/" + "A" * 32 + "/suggestions", headers=bearer(admin)
        )
        assert missing.status_code == 404


async def test_the_socket_answers_suggest_like_rest(plain_server: Any):
    async with plain_server.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        sid = await claimed(api, admin, ASK)
        await say(api, sid, "How do I return an item?")
        console = await Recorder("/agents", ASSIST_EVENTS).connect(
            plain_server.url, {"token": admin}
        )
        try:
            await console.emit("suggest", {"sessionId": sid})
            got = await console.wait_for("suggestions", lambda d: d["sessionId"] == sid)
            await console.emit("suggest", {"sessionId": 42})
            error = await console.wait_for("error")
        finally:
            await console.close()
        assert got["suggestions"] == await suggestions(api, admin, sid)
        assert error["code"] == "INVALID_PAYLOAD"


async def test_used_suggestions_are_counted_in_health(plain_server: Any):
    async with plain_server.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        before = (await api.get("/health", headers=ADMIN_KEY)).json()["counters"]["suggestions"]
        sid = await claimed(api, admin, ASK)
        await say(api, sid, "How do I return an item?")
        (first, *_) = await suggestions(api, admin, sid)
        url = f"/api/v1/agents/conversations/{sid}/messages"
        used = {"id": first["id"], "origin": first["origin"], "edited": True}
        res = await api.post(
            url,
            json={"message": first["text"] + " Anything else?", "suggestion": used},
            headers=bearer(admin),
        )
        assert res.status_code == 200, res.text
        res = await api.post(url, json={"message": "Let me check that."}, headers=bearer(admin))
        assert res.status_code == 200, res.text
        bad = await api.post(
            url,
            json={"message": "x", "suggestion": {"id": "kb:x", "origin": "guess"}},
            headers=bearer(admin),
        )
        assert bad.status_code == 400
        after = (await api.get("/health", headers=ADMIN_KEY)).json()["counters"]["suggestions"]
    assert after["used"] == before["used"] + 1
    assert (
        after["usedByOrigin"].get("knowledge", 0) == before["usedByOrigin"].get("knowledge", 0) + 1
    )
    assert after["edited"] == before["edited"] + 1
    assert after["none"] == before["none"] + 1


async def test_each_reply_is_a_domain_event_naming_its_suggestion():
    published: list[tuple[str, dict[str, Any]]] = []

    class Sink:
        async def publish(self, event_type: str, data: dict[str, Any]) -> None:
            published.append((event_type, data))

    metrics = Metrics()
    usage = Suggestions(sessions=None, knowledge=None, metrics=metrics, events=Events([Sink()]))  # type: ignore[arg-type]
    used = {"id": "kb:return_policy", "origin": "knowledge", "edited": False}
    await usage.record("s1", "a1", used)
    await usage.record("s1", "a1", None)
    assert published == [
        ("agent.replied", {"sessionId": "s1", "agentId": "a1", "suggestion": used}),
        ("agent.replied", {"sessionId": "s1", "agentId": "a1", "suggestion": None}),
    ]
    counted = metrics.snapshot()["suggestions"]
    assert counted == {"used": 1, "usedByOrigin": {"knowledge": 1}, "edited": 0, "none": 1}


async def test_the_model_drafts_a_reply_without_seeing_the_notes(
    model_server: Any, openai_fake: Any
):
    draft = {"reply": "You can return it within 30 days, label included.", "confidence": 0.8}
    openai_fake.fake.tasks["reply_draft"] = {**draft, "sources": ["return_policy"]}
    async with model_server.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        sid = await claimed(api, admin, ASK)
        note = {"note": "INTERNAL-NOTE-9 customer is a known reseller"}
        base = f"/api/v1/agents/conversations/{sid}"
        assert (await api.post(f"{base}/notes", json=note, headers=bearer(admin))).is_success
        await say(api, sid, "How do I return an item?")
        found = await suggestions(api, admin, sid)
    assert len(found) <= 3 and found[0]["sources"][0]["id"] == "return_policy"
    made = found[-1]
    assert made["origin"] == "model" and made["text"] == draft["reply"]
    assert made["confidence"] == 0.8 and [s["id"] for s in made["sources"]] == ["return_policy"]
    (request,) = [
        r["body"]
        for r in openai_fake.fake.requests
        if openai_fake.fake.task_name(r["body"]) == "reply_draft"
    ]
    sent = request["messages"][1]["content"]
    assert "How do I return an item?" in sent and "return_policy" in sent
    assert "INTERNAL-NOTE-9" not in str(request)


async def test_a_reply_proposed_as_knowledge_answers_the_question_once_accepted(
    plain_server: Any,
):
    question = "Do you offer gift wrapping for birthday presents?"
    answer = "Yes: gift wrapping is 4 dollars, chosen at checkout under Extras."
    async with plain_server.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        sid = await claimed(api, admin, ASK)
        await say(api, sid, question)
        url = f"/api/v1/agents/conversations/{sid}"
        sent = await api.post(f"{url}/messages", json={"message": answer}, headers=bearer(admin))
        reply_id = sent.json()["message"]["id"]
        res = await api.post(
            f"{url}/proposals", json={"messageId": reply_id}, headers=bearer(admin)
        )
        assert res.status_code == 201, res.text
        proposal = res.json()["proposal"]
        assert (proposal["question"], proposal["answer"], proposal["status"]) == (
            question,
            answer,
            "open",
        )
        wrong = await api.post(
            f"{url}/proposals", json={"messageId": "nope"}, headers=bearer(admin)
        )
        assert wrong.status_code == 404
        listed = await api.get("/api/v1/knowledge/proposals?status=open", headers=ADMIN_KEY)
        assert proposal["id"] in [p["id"] for p in listed.json()["proposals"]]
        agent_only = await api.get("/api/v1/knowledge/proposals", headers=bearer("not-a-token"))
        assert agent_only.status_code == 401

        accept = f"/api/v1/knowledge/proposals/{proposal['id']}/accept"
        more = {"questions": ["Can you gift wrap my order?", "Is gift wrapping available?"]}
        res = await api.post(accept, json=more, headers=ADMIN_KEY)
        assert res.status_code == 202, res.text
        entry_id = res.json()["proposal"]["entryId"]
        assert res.json()["proposal"]["status"] == "accepted"
        assert (await api.post(accept, headers=ADMIN_KEY)).status_code == 409
        for _ in range(600):  # the new version trains in the background
            status = (await api.get("/api/v1/knowledge", headers=ADMIN_KEY)).json()
            if (
                status["pending"] is None
                and status["version"] == res.json()["knowledge"]["pending"]
            ):
                break
            await asyncio.sleep(0.1)
        search = await api.get(
            "/api/v1/knowledge/search", params={"q": question}, headers=ADMIN_KEY
        )
        assert search.json()["match"]["id"] == entry_id
        other = await claimed(api, admin, ASK)
        await say(api, other, question)
        (first, *_) = await suggestions(api, admin, other)
        assert first["sources"][0]["id"] == entry_id and first["text"] == answer
