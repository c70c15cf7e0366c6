"""Health: the seed's fields on both paths; 503 when Redis goes away."""

import asyncio
import shutil
import subprocess

import pytest

from tests.conftest import free_port, new_session


async def test_health_on_both_paths_with_the_seeds_fields(api):
    for path in ("/api/v1/health", "/health"):
        res = await api.get(path)
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
    before = (await api.get("/health")).json()["counters"]
    sid = await new_session(api)
    await api.post(
        "/api/v1/chat/message", json={"sessionId": sid, "message": "this is an emergency"}
    )
    after = (await api.get("/health")).json()
    counters = after["counters"]
    assert counters["messages"] == before["messages"] + 1
    assert counters["escalations"].get("keyword", 0) == before["escalations"].get("keyword", 0) + 1
    assert (
        sum(counters["repliesByResponder"].values())
        == sum(before["repliesByResponder"].values()) + 1
    )
    assert after["services"]["activeSessions"] >= 1


@pytest.fixture
async def own_redis():
    """A real redis-server of our own, so a test can take it away."""
    port = free_port()
    binary = shutil.which("redis-server")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await asyncio.sleep(0.3)
    yield proc, f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


async def test_health_is_503_and_messages_fail_cleanly_when_redis_goes_away(
    server_factory, own_redis
):
    proc, url = own_redis
    srv = await server_factory(redis_url=url)
    async with srv.client() as api:
        sid = await new_session(api)
        proc.kill()
        proc.wait()
        res = await api.get("/api/v1/health")
        assert res.status_code == 503
        body = res.json()
        assert body["status"] == "unhealthy" and body["services"]["redis"] == "disconnected"
        res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": "hello?"})
        assert res.status_code == 503
        assert res.json()["code"] == "STORAGE_UNAVAILABLE"
