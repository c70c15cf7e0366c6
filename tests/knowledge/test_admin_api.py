"""The admin knowledge API: key required, uploads swapped in while serving, shared by
every instance on the same Redis, and the import command."""

import asyncio
import os
import subprocess
import sys

import pytest

from tests.conftest import new_session

KEY = {"X-API-Key": "admin-secret"}
NEW_KB = {
    "intents": [
        {
            "name": "loyalty",
            "questions": ["Do you have a loyalty programme?", "how do points work", "rewards club"],
            "answer": "Acme Rewards gives one point per dollar.",
        },
        {
            "name": "hours",
            "questions": ["When are you open?", "opening hours", "are you open on sunday"],
            "answer": "We are open 9 to 5.",
        },
    ]
}


async def wait_version(api, old: str, timeout: float = 15) -> dict:
    for _ in range(int(timeout / 0.1)):
        status = (await api.get("/api/v1/knowledge", headers=KEY)).json()
        if status["version"] != old and not status["pending"]:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError("the new version was not swapped in")


@pytest.fixture
async def admin(server_factory):
    srv = await server_factory(admin_api_key="admin-secret")
    async with srv.client() as api:
        yield srv, api


async def test_requests_without_the_key_get_401(admin, server_factory):
    _, api = admin
    for headers in ({}, {"X-API-Key": "wrong"}):
        res = await api.get("/api/v1/knowledge", headers=headers)
        assert res.status_code == 401 and res.json()["error"]
        assert (await api.put("/api/v1/knowledge", json=NEW_KB, headers=headers)).status_code == 401
    closed = await server_factory()  # no ADMIN_API_KEY configured: the admin API is closed
    async with closed.client() as other:
        assert (await other.get("/api/v1/knowledge", headers=KEY)).status_code == 401


async def test_status_and_search_explain_what_the_engine_does(admin):
    _, api = admin
    status = (await api.get("/api/v1/knowledge", headers=KEY)).json()
    assert (
        status["version"] and status["engine"] == "classical" and status["stats"]["entries"] >= 25
    )
    found = (
        await api.get(
            "/api/v1/knowledge/search",
            params={"q": "how long does shipping take", "k": 3},
            headers=KEY,
        )
    ).json()
    assert (
        found["match"]["id"] == "shipping_time"
        and found["confidence"] > 0.5
        and len(found["hits"]) == 3
    )
    assert found["hits"][0]["score"] >= found["hits"][1]["score"]
    refused = (
        await api.get(
            "/api/v1/knowledge/search", params={"q": "who painted the mona lisa"}, headers=KEY
        )
    ).json()
    assert refused["outOfScope"] is True and "match" not in refused


async def test_an_upload_trains_in_the_background_and_then_answers(admin):
    _, api = admin
    old = (await api.get("/api/v1/knowledge", headers=KEY)).json()["version"]
    res = await api.put("/api/v1/knowledge", json=NEW_KB, headers=KEY)
    assert res.status_code == 202 and res.json()["pending"]
    status = await wait_version(api, old)
    assert status["stats"]["entries"] == 2
    sid = await new_session(api)
    body = (
        await api.post(
            "/api/v1/chat/message", json={"sessionId": sid, "message": "how do reward points work?"}
        )
    ).json()
    assert body["response"] == "Acme Rewards gives one point per dollar."


async def test_yaml_and_faq_csv_uploads(admin):
    _, api = admin
    old = (await api.get("/api/v1/knowledge", headers=KEY)).json()["version"]
    csv = "question,answer\nDo you sell socks?,Yes.\nDo you sell hats?,No hats.\n"
    res = await api.put(
        "/api/v1/knowledge", content=csv, headers={**KEY, "content-type": "text/csv"}
    )
    assert res.status_code == 202
    status = await wait_version(api, old)
    assert status["stats"]["faqs"] == 2
    yaml_kb = "intents:\n  - name: a\n    questions: [alpha]\n    answer: A.\n  - name: b\n    questions: [beta]\n    answer: B.\n"
    res = await api.put(
        "/api/v1/knowledge", content=yaml_kb, headers={**KEY, "content-type": "application/yaml"}
    )
    assert res.status_code == 202
    assert (await wait_version(api, status["version"]))["stats"]["intents"] == 2


async def test_a_bad_upload_is_refused_and_the_old_version_keeps_serving(admin):
    _, api = admin
    before = (await api.get("/api/v1/knowledge", headers=KEY)).json()
    bad = "intents:\n  - name: a\n    questions: [alpha]\n    answer: [broken\n"
    res = await api.put(
        "/api/v1/knowledge", content=bad, headers={**KEY, "content-type": "application/yaml"}
    )
    assert (
        res.status_code == 400
        and res.json()["code"] == "INVALID_KNOWLEDGE"
        and "line" in res.json()["detail"]
    )
    duplicate = {"intents": [NEW_KB["intents"][0], NEW_KB["intents"][0]]}
    res = await api.put("/api/v1/knowledge", json=duplicate, headers=KEY)
    assert res.status_code == 400 and "twice" in res.json()["detail"]
    after = (await api.get("/api/v1/knowledge", headers=KEY)).json()
    assert after["version"] == before["version"] and after["pending"] is None


async def test_add_and_delete_one_entry(admin):
    _, api = admin
    old = (await api.get("/api/v1/knowledge", headers=KEY)).json()["version"]
    entry = {
        "name": "loyalty",
        "questions": ["Do you have a loyalty programme?", "reward points"],
        "answer": "Acme Rewards gives one point per dollar.",
    }
    assert (await api.post("/api/v1/knowledge/entries", json=entry, headers=KEY)).status_code == 202
    status = await wait_version(api, old)
    found = (
        await api.get(
            "/api/v1/knowledge/search", params={"q": "do you have a loyalty programme"}, headers=KEY
        )
    ).json()
    assert found["match"]["id"] == "loyalty"
    assert (await api.delete("/api/v1/knowledge/entries/loyalty", headers=KEY)).status_code == 202
    await wait_version(api, status["version"])
    res = await api.delete("/api/v1/knowledge/entries/loyalty", headers=KEY)
    assert res.status_code == 404 and res.json()["code"] == "ENTRY_NOT_FOUND"


async def test_answers_keep_coming_during_a_swap(admin):
    _, api = admin
    sid = await new_session(api)
    old = (await api.get("/api/v1/knowledge", headers=KEY)).json()["version"]

    async def ask(i):
        return await api.post(
            "/api/v1/chat/message", json={"sessionId": sid, "message": f"opening hours? {i}"}
        )

    load = [asyncio.create_task(ask(i)) for i in range(60)]
    assert (await api.put("/api/v1/knowledge", json=NEW_KB, headers=KEY)).status_code == 202
    load += [asyncio.create_task(ask(i)) for i in range(60, 120)]
    results = await asyncio.gather(*load)
    assert all(r.status_code == 200 for r in results)
    await wait_version(api, old)


async def test_every_instance_on_the_same_redis_serves_the_new_version(server_factory):
    first = await server_factory(admin_api_key="admin-secret")
    second = await server_factory(
        admin_api_key="admin-secret", redis_key_prefix=first.settings.redis_key_prefix
    )
    async with first.client() as a, second.client() as b:
        old = (await b.get("/api/v1/knowledge", headers=KEY)).json()["version"]
        assert (await a.put("/api/v1/knowledge", json=NEW_KB, headers=KEY)).status_code == 202
        status = await wait_version(b, old, timeout=20)
        assert status["stats"]["entries"] == 2
        # a third instance started now serves the stored version, not its file
        third = await server_factory(
            admin_api_key="admin-secret", redis_key_prefix=first.settings.redis_key_prefix
        )
        async with third.client() as c:
            assert (await c.get("/api/v1/knowledge", headers=KEY)).json()["version"] == status[
                "version"
            ]


async def test_the_import_command(server_factory, tmp_path):
    srv = await server_factory(admin_api_key="admin-secret")
    env = {
        **os.environ,
        "REDIS_URL": srv.settings.redis_url,
        "REDIS_KEY_PREFIX": srv.settings.redis_key_prefix,
        "APP_ENV": "test",
        "SESSION_ENCRYPTION_KEY": srv.settings.session_encryption_key.get_secret_value(),
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nno answer here\n")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.knowledge.importer", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and f"{bad}, line 2" in done.stderr
    good = tmp_path / "faq.csv"
    good.write_text("question,answer\nDo you sell socks?,Yes.\nDo you sell hats?,No hats.\n")
    async with srv.client() as api:
        old = (await api.get("/api/v1/knowledge", headers=KEY)).json()["version"]
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.knowledge.importer", str(good)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        status = await wait_version(api, old, timeout=20)
        assert status["stats"]["faqs"] == 2


async def test_a_change_that_would_leave_too_little_to_serve_is_a_409(admin):
    _, api = admin
    old = (await api.get("/api/v1/knowledge", headers=KEY)).json()["version"]
    assert (await api.put("/api/v1/knowledge", json=NEW_KB, headers=KEY)).status_code == 202
    await wait_version(api, old)
    res = await api.delete("/api/v1/knowledge/entries/hours", headers=KEY)
    assert res.status_code == 409 and res.json()["code"] == "KNOWLEDGE_CONFLICT"
