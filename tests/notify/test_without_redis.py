"""`make run` with no Redis: webhooks still go out (the queue lives in the in-process Redis,
with the same streams, consumer group and Lua), and the start-up log says it is not durable."""

from __future__ import annotations

import logging

import pytest

from services.config import Settings
from tests.conftest import TEST_KEY, free_port, start_server
from tests.notify.conftest import SECRET, Receiver, fast_webhooks, verify
from tests.notify.test_webhooks import escalate


async def test_webhooks_work_without_any_redis(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="services.notify")
    receiver.fail_first = 1
    settings = Settings(
        _env_file=None,
        app_env="test",
        redis_port=free_port(),
        session_encryption_key=TEST_KEY,
        **fast_webhooks(webhook_urls=receiver.url, webhook_secret=SECRET),
    )
    settings.model_fields_set.discard("redis_port")  # as if nothing answered on localhost:6379
    srv = await start_server(settings)
    try:
        async with srv.client() as api:
            await escalate(api)
            await receiver.wait_until(lambda: len(receiver.accepted()) == 1)
    finally:
        await srv.stop()
    assert [h.status for h in receiver.hits] == [500, 204]
    assert verify(receiver.hits[1])["type"] == "conversation.escalated"
    assert "webhook deliveries are queued in this process's memory" in caplog.text
