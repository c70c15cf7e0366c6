"""`make run` with no Redis: the in-process store runs the same Lua scripts, so the whole
agent side works in one process (and says loudly that nothing persists)."""

from __future__ import annotations

from services.config import Settings
from tests.agents.conftest import ADMIN, CUSTOMER_EVENTS, Recorder, bearer, login
from tests.conftest import TEST_KEY, free_port, new_session, start_server


async def test_the_agent_side_works_without_any_redis():
    settings = Settings(
        _env_file=None,
        app_env="test",
        redis_port=free_port(),
        session_encryption_key=TEST_KEY,
        admin_email=ADMIN["email"],
        admin_password=ADMIN["password"],
    )
    settings.model_fields_set.discard("redis_port")  # as if nothing answered on localhost:6379
    srv = await start_server(settings)
    page = None
    try:
        async with srv.client() as api:
            token = await login(api, ADMIN["email"], ADMIN["password"])
            health = (await api.get("/api/v1/health", headers=bearer(token))).json()
            assert health["storage"]["backend"] == "memory"
            assert health["storage"]["persistent"] is False
            sid = await new_session(api)
            page = await Recorder("/", CUSTOMER_EVENTS).connect(srv.url)
            await page.emit("join-chat", {"sessionId": sid})
            await page.wait_for("chat-joined")
            res = await api.post(
                "/api/v1/chat/message", json={"sessionId": sid, "message": "urgent"}
            )
            assert res.json()["status"] == "escalated"
            queue = (await api.get("/api/v1/agents/queue", headers=bearer(token))).json()
            assert [c["sessionId"] for c in queue["conversations"]] == [sid]
            url = f"/api/v1/agents/conversations/{sid}"
            assert (await api.post(url + "/claim", headers=bearer(token))).status_code == 200
            await api.post(url + "/messages", json={"message": "Hi there"}, headers=bearer(token))
            reply = await page.wait_for("message-received", lambda d: d.get("sender") == "agent")
            assert reply["message"] == "Hi there"
            assert (await api.post(url + "/resolve", headers=bearer(token))).status_code == 200
            rated = await api.post(f"/api/v1/chat/session/{sid}/rating", json={"rating": 5})
            assert rated.status_code == 200
    finally:
        if page is not None:
            await page.close()
        await srv.stop()
