"""Rolling restart of one instance in place: SIGTERM while a REST reply and a socket reply
are waiting on a slow model. The listener closes at once (new connections are refused),
the socket is told to reconnect, both replies finish and are stored, the process exits 0;
the next instance on the same port takes the socket back, which rejoins its session and
finds the reply in its history."""

from __future__ import annotations

import asyncio
import signal
import uuid

import httpx
import pytest
import socketio

from tests.browser.conftest import delete_prefix, server_env
from tests.conftest import free_port
from tests.fakes.llm import serve_fake
from tests.fleet.processes import launch_app, stop, terminate_and_wait

ANSWER = "Parcels leave our warehouse within a day."


@pytest.fixture
async def slow_model():
    running = await serve_fake()
    running.fake.set(latency=2.5, answer=ANSWER)
    yield running
    await running.stop()


def model_env(prefix: str, model_url: str) -> dict[str, str]:
    return server_env(prefix) | {
        "OPENAI_API_KEY": "sk-fake",
        "OPENAI_BASE_URL": model_url,
        "AI_PROVIDER_ORDER": "openai,local",
        "SHUTDOWN_GRACE": "10",
    }


async def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_sigterm_finishes_replies_in_flight_and_sockets_come_back(slow_model, tmp_path):
    prefix = f"test:fleet-stop:{uuid.uuid4().hex}:"
    env, port = model_env(prefix, slow_model.openai_url), free_port()
    first = await launch_app(env, port, tmp_path / "first.log")
    second = None
    customer = socketio.AsyncClient(reconnection_delay=0.2, reconnection_delay_max=1)
    events: list[tuple[str, object]] = []
    joined: dict = {}
    try:
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as api:
            res = await api.post("/api/v1/chat/session", json={"userId": "rest-u", "metadata": {}})
            rest_session = res.json()["sessionId"]

            @customer.event
            async def connect():
                events.append(("connect", None))
                if "sessionId" in joined:  # a reconnection: rejoin the same conversation
                    await customer.emit("join-chat", {"sessionId": joined["sessionId"]})

            @customer.event
            async def disconnect(reason=None):
                events.append(("disconnect", reason))

            @customer.on("chat-joined")
            async def chat_joined(data):
                joined.update(data)
                events.append(("chat-joined", data))

            await customer.connect(first.url, transports=["websocket"], wait_timeout=10)
            await customer.emit("join-chat", {"userId": "socket-u"})
            await wait_for(lambda: "sessionId" in joined, what="chat-joined")
            socket_session = joined["sessionId"]

            rest_reply = asyncio.create_task(
                api.post(
                    "/api/v1/chat/message",
                    json={"sessionId": rest_session, "message": "When does my parcel ship?"},
                )
            )
            await wait_for(lambda: len(slow_model.fake.requests) >= 1, what="REST at the model")
            # The socket's reply ends a second after the REST one, which uvicorn waits for:
            # only the app's own wait (services/inflight.py) keeps Redis open for it.
            await asyncio.sleep(1.0)
            await customer.emit(
                "send-message", {"sessionId": socket_session, "message": "And mine, please?"}
            )
            await wait_for(lambda: len(slow_model.fake.requests) >= 2, what="both at the model")

            first.process.send_signal(signal.SIGTERM)
            # New connections are refused as soon as the listener closes.
            async with httpx.AsyncClient(timeout=2) as fresh:
                refused = False
                for _ in range(300):  # at most 15 s on a busy machine; at once on a quiet one
                    try:
                        await fresh.get(first.url + "/api/v1/health")
                    except httpx.ConnectError:
                        refused = True
                        break
                    await asyncio.sleep(0.05)
            assert refused, "the stopping instance still accepted connections"
            await wait_for(
                lambda: (
                    ("disconnect", "transport close") in events
                    or any(e == "disconnect" for e, _ in events)
                ),
                what="the socket told to go",
            )
            assert first.process.returncode is None  # still finishing the replies

            res = await rest_reply  # the request in flight was answered, not cut
            assert res.status_code == 200, res.text
            assert res.json()["response"] == ANSWER
            # uvicorn re-raises SIGTERM after a clean shutdown: -15, as process managers expect
            assert await asyncio.wait_for(first.process.wait(), 40) in (0, -signal.SIGTERM)

        # The next instance on the same port: the socket reconnects by itself and rejoins.
        history_before = len(joined.get("history", []))
        second = await launch_app(env, port, tmp_path / "second.log")
        await wait_for(
            lambda: sum(1 for e, _ in events if e == "chat-joined") >= 2,
            timeout=60,
            what="the socket to rejoin",
        )
        history = [(m["role"], m["content"]) for m in joined["history"]]
        assert history_before == 0
        assert history[-2:] == [("user", "And mine, please?"), ("assistant", ANSWER)]
        async with httpx.AsyncClient(base_url=second.url, timeout=10) as api:
            res = await api.get(f"/api/v1/chat/history/{rest_session}")
            assert res.status_code == 200, res.text
            stored = [(m["role"], m["content"]) for m in res.json()["history"]]
            assert stored[-2:] == [("user", "When does my parcel ship?"), ("assistant", ANSWER)]
    finally:
        await customer.disconnect()
        await stop(first.process)
        if second is not None:
            await terminate_and_wait(second)
        await delete_prefix(prefix)
