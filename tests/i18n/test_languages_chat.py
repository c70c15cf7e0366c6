"""Languages end to end (REST and Socket.IO against a real server): the customer's language
recorded with each message, the fixed sentences in the language the browser asks for, the
built-in engine's polite refusal or `unsupported_language` escalation, the page's labels,
and the widget's identify (the model's instruction: tests/responders/test_language.py)."""

import hashlib
import hmac

import pytest

from services.i18n import Catalogues
from tests.conftest import delete_prefix, make_settings, new_session, redis_client, start_server
from tests.test_sockets import Client

HUMAN = "I want to talk to a human"
TEXTS = Catalogues.bundled()


async def send(api, sid: str, message: str) -> dict:
    res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": message})
    assert res.status_code == 200, res.text
    return res.json()


async def history(api, sid: str) -> list[dict]:
    return (await api.get(f"/api/v1/chat/history/{sid}")).json()["history"]


@pytest.fixture(scope="module")
async def langs(tmp_path_factory):
    srv = await start_server(
        make_settings(
            detect_languages=["en", "de", "fr", "es", "it", "pl"],
            widget_identity_secret="widget-secret",
        )
    )
    yield srv
    await srv.stop()
    client = redis_client()
    await delete_prefix(client, srv.settings.redis_key_prefix)
    await client.aclose()


async def test_the_browser_language_writes_the_handoff_and_messages_record_theirs(langs):
    async with langs.client(headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}) as api:
        sid = await new_session(api)
        body = await send(api, sid, HUMAN)
        assert body["needsEscalation"]
        # nobody is online: the away sentence, in French as the browser asked
        assert TEXTS.text("fr", "server.away_nobody") in body["response"]
        entries = await history(api, sid)
        assert entries[0]["language"] == "en"  # what the customer wrote in
        assert entries[1]["language"] == "fr"  # what they were answered in


async def test_built_in_engine_says_politely_it_reads_only_english(langs):
    async with langs.client() as api:
        sid = await new_session(api)
        body = await send(api, sid, "Wie lange dauert der Versand nach Österreich?")
        assert "nur auf Englisch" in body["response"] and not body["needsEscalation"]
        assert body["sources"] == []
        assert (await history(api, sid))[0]["language"] == "de"


async def test_a_language_without_catalogue_escalates_as_unsupported_language(langs):
    async with langs.client() as api:
        sid = await new_session(api)
        body = await send(api, sid, "Gdzie jest moje zamówienie? Czekam już dwa tygodnie.")
        assert body["needsEscalation"]
        rules = [r["rule"] for r in body["escalation"]["reasons"]]
        assert "unsupported_language" in rules
        assert body["response"].endswith(TEXTS.text("en", "server.away_nobody"))


async def test_page_labels_in_the_asked_language(langs):
    async with langs.client(headers={"Accept-Language": "de"}) as api:
        res = await api.get("/api/v1/i18n/messages")
        body = res.json()
        assert body["language"] == "de" and body["negotiated"]
        assert body["messages"]["page.new_chat"] == "Neues Gespräch"
        assert not any(k.startswith("server.") for k in body["messages"])
        chosen = (await api.get("/api/v1/i18n/messages", params={"language": "es"})).json()
        assert chosen["language"] == "es" and chosen["messages"]["page.send"] == "Enviar"
    async with langs.client(headers={"Accept-Language": "pl"}) as api:
        body = (await api.get("/api/v1/i18n/messages")).json()
        assert body["language"] == "en" and not body["negotiated"]
        assert set(body["languages"]) >= {"en", "de", "fr", "es"}


def signature(user_id: str) -> str:
    return hmac.new(b"widget-secret", user_id.encode(), hashlib.sha256).hexdigest()


async def test_identify_needs_the_company_signature(langs):
    client = await Client().connect(langs.url)
    client.sio.on("identified", client._recorder("identified"))
    try:
        await client.emit("join-chat", {"userId": "guest-1", "language": "de"})
        sid = (await client.wait_for("chat-joined"))[0]["sessionId"]
        await client.emit(
            "identify", {"sessionId": sid, "userId": "cust-42", "signature": "0" * 64}
        )
        error = (await client.wait_for("error"))[0]
        assert error["code"] == "IDENTITY_REFUSED"
        await client.emit("identify", {"sessionId": sid, "userId": "cust-42"})
        assert (await client.wait_for("error", 2))[1]["code"] == "IDENTITY_REFUSED"
        good = {
            "sessionId": sid,
            "userId": "cust-42",
            "name": "Ada",
            "signature": signature("cust-42"),
        }
        await client.emit("identify", good)
        identified = (await client.wait_for("identified"))[0]
        assert identified == {
            "sessionId": sid,
            "userId": "cust-42",
            "name": "Ada",
            "verified": True,
        }
        other = {"sessionId": sid, "userId": "cust-7", "signature": signature("cust-7")}
        await client.emit("identify", other)  # someone else's identity on this conversation
        assert (await client.wait_for("error", 3))[2]["code"] == "IDENTITY_REFUSED"
    finally:
        await client.close()
