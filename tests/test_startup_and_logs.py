"""Start-up rules (Redis, keys) and structured logs that keep secrets out."""

import json
import logging

import pytest

from services.config import Settings
from services.container import Container, StartupError, connect_redis
from services.logs import JsonFormatter
from tests.conftest import TEST_KEY, free_port, make_settings, new_session


async def test_an_explicit_but_unreachable_redis_stops_start_up_naming_the_setting():
    port = free_port()
    container = Container(make_settings(redis_url=f"redis://127.0.0.1:{port}/0"))
    with pytest.raises(StartupError, match="REDIS_URL") as err:
        await container.start()
    assert str(port) in str(err.value)


async def test_without_any_redis_it_falls_back_to_memory_loudly(caplog):
    settings = Settings(
        _env_file=None, app_env="test", redis_port=free_port(), session_encryption_key=TEST_KEY
    )
    settings.model_fields_set.discard("redis_port")  # as if it were the default localhost:6379
    assert not settings.redis_explicit
    with caplog.at_level(logging.WARNING):
        assert await connect_redis(settings) is None
    assert "NO REDIS" in caplog.text and "LOST on restart" in caplog.text


async def test_production_refuses_to_start_without_an_encryption_key():
    container = Container(make_settings(app_env="production", session_encryption_key=None))
    with pytest.raises(StartupError, match="SESSION_ENCRYPTION_KEY"):
        await container.start()


async def test_logs_are_json_with_request_ids_and_no_message_text(server_factory, caplog):
    secret = "my passport number is X1234567"
    srv = await server_factory()
    with caplog.at_level(logging.INFO):
        async with srv.client() as api:
            sid = await new_session(api)
            res = await api.post(
                "/api/v1/chat/message",
                json={"sessionId": sid, "message": secret},
                headers={"x-request-id": "req-42"},
            )
            assert res.status_code == 200
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(r)) for r in caplog.records if r.levelno >= logging.INFO]
    text = "\n".join(json.dumps(line) for line in lines)
    assert "X1234567" not in text and "passport" not in text
    assert sid not in text  # ids grant access; logs carry a prefix
    answered = [line for line in lines if line["event"] == "message answered"]
    assert answered and answered[0]["request_id"] == "req-42"
    assert answered[0]["session_id"].startswith(sid[:8]) and answered[0]["provider"]
    assert any(line["event"] == "request" and line["status"] == 200 for line in lines)


async def test_a_bad_knowledge_base_stops_start_up_naming_the_setting(tmp_path):
    bad = tmp_path / "kb.yaml"
    bad.write_text("intents: [\n")
    container = Container(make_settings(knowledge_base_path=bad))
    with pytest.raises(StartupError, match="KNOWLEDGE_BASE_PATH") as err:
        await container.start()
    assert str(bad) in str(err.value)
    await container.aclose()
