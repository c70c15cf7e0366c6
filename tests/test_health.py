"""Health: the seed's fields on both paths; 503 when Redis goes away."""

import pytest

from tests.conftest import HEALTH_DETAIL, new_session
from tests.redis_server import start_redis_server


async def test_health_on_both_paths_with_the_seeds_fields(api):
    for path in ("/api/v1/health", "/health"):
        res = await api.get(path, headers=HEALTH_DETAIL)
        assert res.status_code == 200
        body = res.json()
        assert body["status"] == "healthy"
        assert body["services"]["redis"] == "connected"
        assert body["services"]["openai"] == "not configured"
        assert body["services"]["gemini"] == "not configured"
        assert isinstance(body["services"]["activeSessions"], int)
        assert body["version"] and body["environment"] == "test" and body["timestamp"]
        assert body["storage"]["backend"] == "redis" and body["storage"]["latencyMs"] >= 0
        assert body["responders"]["local"]["state"]
        assert body["uptimeSeconds"] >= 0


async def test_counters_track_messages_escalations_and_responders(api):
    before = (await api.get("/health", headers=HEALTH_DETAIL)).json()["counters"]
    sid = await new_session(api)
    await api.post(
        "/api/v1/chat/message", json={"sessionId": sid, "message": "this is an emergency"}
    )
    after = (await api.get("/health", headers=HEALTH_DETAIL)).json()
    counters = after["counters"]
    assert counters["messages"] == before["messages"] + 1
    assert counters["escalations"].get("keyword", 0) == before["escalations"].get("keyword", 0) + 1
    assert (
        sum(counters["repliesByResponder"].values())
        == sum(before["repliesByResponder"].values()) + 1
    )
    assert after["services"]["activeSessions"] >= 1


@pytest.fixture
def own_redis(tmp_path):
    """A real redis-server of this test's own, so the test can take it away."""
    server = start_redis_server(tmp_path)
    yield server
    server.stop()


async def test_health_is_503_and_messages_fail_cleanly_when_redis_goes_away(
    server_factory, own_redis
):
    srv = await server_factory(redis_url=own_redis.url)
    async with srv.client() as api:
        sid = await new_session(api)
        own_redis.kill()
        res = await api.get("/api/v1/health")
        assert res.status_code == 503
        body = res.json()
        assert body["status"] == "unhealthy" and body["services"]["redis"] == "disconnected"
        res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "hello?"})
        assert res.status_code == 503
        assert res.json()["code"] == "STORAGE_UNAVAILABLE"
