"""HTTP and socket hardening on a real server: security headers on every kind of response,
origins (CORS and Socket.IO) in production, the public and the admin health report, Redis
with an ACL user, uvicorn's limits, 1,000 connect/disconnect cycles and garbage frames with
the server's memory measured, and a hypothesis-driven fuzzer on both socket namespaces."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from app import create_app, server_options
from services.config import load_settings
from services.container import StartupError, connect_redis
from tests.agents.conftest import ADMIN, Recorder, desk_settings, login
from tests.browser.conftest import server_env
from tests.conftest import HEALTH_DETAIL, delete_prefix, free_port, make_settings, new_session
from tests.live_server import APP, start_server, stop
from tests.redis_server import start_redis_server

PUBLIC_HEALTH = {"status", "timestamp", "version", "environment", "services"}
DETAIL = {"uptimeSeconds", "storage", "responders", "counters", "knowledge", "businessHours"}


def csp(res: httpx.Response) -> dict[str, str]:
    """The Content-Security-Policy as {directive: sources}."""
    policy = res.headers["content-security-policy"]
    return dict((part.strip() + " ").split(" ", 1) for part in policy.split(";"))


def assert_common(res: httpx.Response) -> None:
    assert res.headers["x-content-type-options"] == "nosniff", res.url
    assert res.headers["referrer-policy"] == "no-referrer", res.url
    assert "unsafe-inline" not in res.headers["content-security-policy"] or "/ui" in str(res.url)


async def test_every_kind_of_response_carries_the_security_headers(api):
    pages = [await api.get(path) for path in ("/", "/agent/", "/js/chat.js", "/css/chat.css")]
    pages.append(await api.get("/no-such-page"))  # the static 404
    for res in pages:
        assert_common(res)
        policy = csp(res)
        assert policy["script-src"].strip() == "'self'" and policy["style-src"].strip() == "'self'"
        assert policy["frame-ancestors"].strip() == "'self'"
        assert res.headers["x-frame-options"] == "SAMEORIGIN"
    assert pages[0].status_code == 200 and pages[-1].status_code == 404

    sid = await new_session(api)
    api_answers = [
        await api.get("/api/v1/health"),  # JSON
        await api.get("/health"),
        await api.get(f"/api/v1/chat/history/{sid}"),
        await api.get("/api/v1/chat/history/" + "0" * 32),  # a problem
        await api.post("/api/v1/chat/message", json={"nope": 1}),  # a validation problem
        await api.post("/api/v1/chat/message", content=b"x" * (2 << 20)),  # 413 (BodyLimit)
        await api.get("/api/v1/openapi.json"),  # the spec
        await api.get("/api/v1/asyncapi.json"),
        await api.get("/socket.io/", params={"EIO": "4", "transport": "polling"}),
    ]
    statuses = [res.status_code for res in api_answers]
    assert statuses[:2] == [200, 200] and statuses[-1] == 200 and 404 in statuses
    assert 400 in statuses and 413 in statuses
    for res in api_answers:
        assert_common(res)
        assert csp(res)["default-src"].strip() == "'none'", res.url
        assert csp(res)["frame-ancestors"].strip() == "'none'"
        assert res.headers["x-frame-options"] == "DENY"
    assert api_answers[3].headers["content-type"] == "application/problem+json"

    ui = await api.get("/api/v1/ui/")  # Swagger UI: Connexion's page, inline scripts allowed
    assert ui.status_code == 200 and csp(ui)["frame-ancestors"].strip() == "'none'"
    assert ui.headers["x-content-type-options"] == "nosniff"


async def test_embed_origins_may_frame_the_pages_and_nobody_else(server_factory):
    srv = await server_factory(embed_origins="https://shop.example,https://*.acme.example")
    async with srv.client() as api:
        page = await api.get("/")
        assert csp(page)["frame-ancestors"].split() == [
            "'self'",
            "https://shop.example",
            "https://*.acme.example",
        ]
        assert "x-frame-options" not in page.headers  # it cannot name other sites
        assert csp(await api.get("/api/v1/health"))["frame-ancestors"].strip() == "'none'"
    with pytest.raises(SystemExit, match="EMBED_ORIGINS"):
        load_settings(_env_file=None, embed_origins="https://x; script-src *")


def preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST"}


async def polling_handshake(api: httpx.AsyncClient, origin: str) -> httpx.Response:
    params = {"EIO": "4", "transport": "polling"}
    return await api.get("/socket.io/", params=params, headers={"Origin": origin})


async def test_production_answers_only_its_own_origin_unless_cors_origins_says_more(
    server_factory,
):
    evil, shop = "https://evil.example", "https://shop.example"
    prod = await server_factory(app_env="production")
    async with prod.client() as api:
        res = await api.options("/api/v1/chat/session", headers=preflight(evil))
        assert "access-control-allow-origin" not in res.headers
        res = await api.post("/api/v1/chat/session", json={"userId": "u"}, headers={"Origin": evil})
        assert "access-control-allow-origin" not in res.headers
        assert (await polling_handshake(api, evil)).status_code == 400
        assert (await polling_handshake(api, prod.url)).status_code == 200  # the page itself
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(prod.url, headers={"Origin": evil}, transports=["websocket"])
    listed = await server_factory(app_env="production", cors_origins=shop)
    async with listed.client() as api:
        res = await api.options("/api/v1/chat/session", headers=preflight(shop))
        assert res.headers["access-control-allow-origin"] == shop
        assert (await polling_handshake(api, shop)).status_code == 200
        assert (await polling_handshake(api, evil)).status_code == 400
    dev = await server_factory(app_env="development")
    async with dev.client() as api:
        res = await api.options("/api/v1/chat/session", headers=preflight(evil))
        assert res.headers["access-control-allow-origin"] in ("*", evil)
        assert (await polling_handshake(api, evil)).status_code == 200


async def test_health_is_public_and_its_detail_needs_the_admin_key_or_an_admin_token(
    server_factory,
):
    srv = await server_factory(**desk_settings())
    async with srv.client() as api:
        for path in ("/health", "/api/v1/health"):
            for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer nope"}):
                res = await api.get(path, headers=headers)
                assert res.status_code == 200, res.text
                body = res.json()
                assert set(body) == PUBLIC_HEALTH, body
                assert body["services"]["redis"] == "connected"
                assert body["services"]["responders"]["local"] == "closed"
            detail = (await api.get(path, headers=HEALTH_DETAIL)).json()
            assert set(detail) == PUBLIC_HEALTH | DETAIL
        token = await login(api, ADMIN["email"], ADMIN["password"])
        res = await api.get("/health", headers={"Authorization": f"Bearer {token}"})
        assert set(res.json()) == PUBLIC_HEALTH | DETAIL


ACL_PREFIX = "supportbot-acl:"


@pytest.fixture
def acl_redis(tmp_path):
    """A real redis-server whose default user is off: only the ACL user `supportbot` gets in,
    to its own keys and channels, without administrative commands (as the README says)."""
    server = start_redis_server(tmp_path)
    password = secrets.token_urlsafe(16) + ":@/"  # characters a URL must escape

    async def configure() -> None:
        admin = Redis.from_url(server.url)
        rules = [f">{password}", f"~{ACL_PREFIX}*", f"&{ACL_PREFIX}*", "+@all", "-@admin"]
        await admin.execute_command(
            "ACL", "SETUSER", "supportbot", "on", *rules, "-flushall", "-flushdb", "-keys"
        )
        await admin.execute_command("ACL", "SETUSER", "default", "off")
        await admin.aclose()

    yield server, password, configure
    server.stop()


async def test_redis_with_an_acl_user_and_a_password(server_factory, acl_redis):
    server, password, configure = acl_redis
    await configure()
    own = {
        "redis_url": None,
        "redis_host": "127.0.0.1",
        "redis_port": server.port,
        "redis_key_prefix": ACL_PREFIX,
    }
    srv = await server_factory(redis_username="supportbot", redis_password=password, **own)
    assert srv.settings.redis_dsn.startswith("redis://supportbot:")
    async with srv.client() as api:
        health = (await api.get("/health")).json()
        assert health["services"]["redis"] == "connected"
        sid = await new_session(api)
        assert (await api.get(f"/api/v1/chat/history/{sid}")).status_code == 200
    wrong = make_settings(redis_username="supportbot", redis_password="wrong-password", **own)
    with pytest.raises(StartupError) as failed:
        await connect_redis(wrong)
    assert "wrong-password" not in str(failed.value) and password not in str(failed.value)


def test_rediss_and_acl_users_in_the_dsn():
    s = load_settings(
        _env_file=None,
        redis_host="r.example",
        redis_username="bot",
        redis_password="p w",
        redis_tls=True,
    )
    assert s.redis_dsn == "rediss://bot:p%20w@r.example:6379/0" and s.redis_explicit
    client = Redis.from_url(s.redis_dsn)
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["username"] == "bot" and kwargs["password"] == "p w"
    url = "rediss://bot:secret@r.example:6380/2"
    assert load_settings(_env_file=None, redis_url=url).redis_dsn == url


async def test_uvicorn_limits_refuse_huge_headers_and_keep_serving():
    settings = make_settings(port=free_port(), host="127.0.0.1", keep_alive_timeout=2)
    options = server_options(settings)
    assert options["h11_max_incomplete_event_size"] == 16 * 1024
    assert options["timeout_keep_alive"] == 2 and options["limit_concurrency"] == 1000
    config = uvicorn.Config(create_app(settings), log_level="warning", **options)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        url = f"http://127.0.0.1:{settings.port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as api:
            try:  # h11 refuses it (400) and closes, perhaps while the client still writes
                res = await api.get("/health", headers={"X-Padding": "x" * 1024 * 1024})
                assert res.status_code in (400, 431)
            except httpx.TransportError:
                pass
            res = await api.get("/health")
            assert res.status_code == 200 and "server" not in res.headers
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
    await delete_prefix(Redis.from_url(settings.redis_dsn), settings.redis_key_prefix)


# --- churn, garbage and memory (the server in its own process, started as `python -m app`) --


# This test is about churn and junk, not the rate limits (tests/guard/test_limits.py).
NO_LIMITS = {
    "RATE_LIMIT_SESSIONS": "100000/hour",
    "RATE_LIMIT_MESSAGES": "100000/minute",
    "RATE_LIMIT_REQUESTS": "100000/minute",
    "RATE_LIMIT_SOCKET_EVENTS": "100000/minute",
    "RATE_LIMIT_AGENTS": "100000/minute",
    "RATE_LIMIT_SOCKETS": "10000",
}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
async def own_process(tmp_path) -> Any:
    prefix = f"test:guard:{uuid.uuid4().hex}:"
    env = server_env(prefix) | NO_LIMITS
    srv = await start_server(env, tmp_path / "server.log", command=APP)
    try:
        yield srv
    finally:
        await stop(srv.process)
        redis = Redis.from_url(env["REDIS_URL"])
        await delete_prefix(redis, prefix)
        await redis.aclose()


async def cycles(url: str, session: str, count: int, parallel: int = 10) -> None:
    """`count` Socket.IO clients that connect (websocket), join a chat and disconnect."""

    async def one() -> None:
        client = socketio.AsyncClient(reconnection=False)
        joined = asyncio.Event()
        client.on("chat-joined", lambda _data: joined.set())
        await client.connect(url, transports=["websocket"], wait_timeout=10)
        await client.emit("join-chat", {"sessionId": session})
        await asyncio.wait_for(joined.wait(), 10)
        await client.disconnect()

    async def worker(n: int) -> None:
        for _ in range(n):
            await one()

    await asyncio.gather(*(worker(count // parallel) for _ in range(parallel)))


GARBAGE: list[str | bytes] = [
    "",
    "4",
    "9",
    "42",
    "42[",
    "42garbage",
    '42["send-message",',
    '42["connect",{"x":1}]',
    '42["disconnect"]',
    "42[1,2,3]",
    '42{"a":1}',
    '42/agents,["watch",{}]',
    "40/no-such-namespace,",
    "41",
    "43[]",
    '451-["send-message",{"_placeholder":true,"num":0}]',
    '452-["rate",{"_placeholder":true,"num":5}]',
    "2probe",
    "5",
    "6",
    "1",
    "\x00\udcff" * 10,
    "42" + json.dumps(["send-message", {"sessionId": "x" * 10_000, "message": "y"}]),
    "42" + "[" * 5000 + "]" * 5000,
    b"\x00\xff\xfe" * 100,
    b"\x04garbage",
    b"",
]


async def garbage_frames(ws_url: str) -> None:
    """Raw engine.io junk over a websocket, then an over-size frame; each connection is
    closed by the server or by us, and nothing else happens."""
    for frame in GARBAGE:
        with contextlib.suppress(WebSocketException, OSError):
            async with ws_connect(ws_url, open_timeout=5, close_timeout=2) as ws:
                await asyncio.wait_for(ws.recv(), 5)  # the open packet
                await ws.send("40")
                await ws.send(
                    frame if isinstance(frame, bytes) else frame.encode("utf-8", "replace").decode()
                )
                await ws.send("42" + json.dumps(["typing", None]))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.3)
    with contextlib.suppress(WebSocketException, OSError):
        async with ws_connect(ws_url, open_timeout=5, max_size=None) as ws:
            await ws.recv()
            await ws.send("42" + "x" * (512 * 1024))  # past ws_max_size: the server closes
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.recv(), 2)


def raw_http_junk(port: int) -> None:
    for junk in (b"\x16\x03\x01\x02\x00garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\xff" * 4096):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(junk)
            with contextlib.suppress(OSError):
                conn.recv(1024)


async def test_churn_and_garbage_leave_the_server_up_and_its_memory_flat(own_process):
    srv = own_process
    pid = srv.process.pid
    neighbour = await Recorder("/", ("chat-joined", "message-received", "error")).connect(srv.url)
    try:
        await neighbour.emit("join-chat", {"userId": "neighbour"})
        session = (await neighbour.wait_for("chat-joined"))["sessionId"]
        await cycles(srv.url, session, 100)  # warm-up: imports, caches, pools
        before = rss_kib(pid)
        await cycles(srv.url, session, 1000)
        ws_url = srv.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        await garbage_frames(ws_url)
        await asyncio.to_thread(raw_http_junk, int(srv.url.rsplit(":", 1)[1]))
        after = rss_kib(pid)
        assert srv.process.returncode is None
        assert after - before < 40 * 1024, f"RSS grew from {before} KiB to {after} KiB"
        async with httpx.AsyncClient(base_url=srv.url, timeout=10) as api:
            assert (await api.get("/health")).status_code == 200
        assert neighbour.sio.connected
        await neighbour.emit("send-message", {"sessionId": session, "message": "Still there?"})
        await neighbour.wait_for("message-received", timeout=20)
    finally:
        await neighbour.close()
    # Engine.IO catches and logs (as errors) the junk it cannot decode; nothing escapes to
    # uvicorn, and the empty frame that used to is one warning line (SocketGuard).
    log = srv.log_path.read_text(errors="replace")
    assert "Exception in ASGI application" not in log, log[-4000:]
    assert "socket closed on a malformed frame" in log


# --- the fuzzer ------------------------------------------------------------------------------

EVENT_NAMES = [
    "join-chat", "send-message", "typing", "rate", "leave-contact", "join-agents",
    "set-presence", "watch", "unwatch", "message", "error", "connect", "disconnect",
]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = ["sessionId", "userId", "message", "isTyping", "rating", "email", "apiKey", "status"]
PAYLOADS = (
    JSON_VALUES
    | st.dictionaries(st.sampled_from(KEYS), JSON_VALUES, max_size=5)
    | st.binary(max_size=64)
)
EVENTS = st.tuples(
    st.sampled_from(["/", "/agents"]),
    st.sampled_from(EVENT_NAMES) | st.text(max_size=20),
    PAYLOADS,
)


async def test_a_socket_fuzzer_never_crashes_the_server_or_drops_a_neighbour(server_factory):
    srv = await server_factory(**desk_settings(), **{k.lower(): v for k, v in NO_LIMITS.items()})
    async with srv.client() as api:
        token = await login(api, ADMIN["email"], ADMIN["password"])
    neighbour = await Recorder("/", ("chat-joined", "message-received", "error")).connect(srv.url)
    await neighbour.emit("join-chat", {"userId": "neighbour"})
    session = (await neighbour.wait_for("chat-joined"))["sessionId"]
    loop = asyncio.get_running_loop()
    fuzzer: dict[str, socketio.AsyncClient] = {}

    async def connected() -> socketio.AsyncClient:
        client = fuzzer.get("client")
        if client is None or not client.connected or len(client.namespaces) < 2:
            if client is not None:
                await client.disconnect()
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(
                srv.url,
                namespaces=["/", "/agents"],
                auth={"token": token},
                transports=["websocket"],
                wait_timeout=10,
            )
            fuzzer["client"] = client
        return client

    async def send(namespace: str, event: str, payload: Any) -> None:
        client = await connected()
        with contextlib.suppress(ValueError, TypeError, socketio.exceptions.BadNamespaceError):
            await client.emit(event, payload, namespace=namespace)
        await asyncio.sleep(0.005)

    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(EVENTS, min_size=1, max_size=5))
    def fuzz(events: list[tuple[str, str, Any]]) -> None:
        for namespace, event, payload in events:
            asyncio.run_coroutine_threadsafe(send(namespace, event, payload), loop).result(30)

    try:
        await asyncio.to_thread(fuzz)
        async with srv.client() as api:
            assert (await api.get("/health")).status_code == 200
        assert neighbour.sio.connected
        await neighbour.emit("send-message", {"sessionId": session, "message": "Still there?"})
        await neighbour.wait_for("message-received", timeout=20)
        assert not srv.task.done()
    finally:
        await neighbour.close()
        if "client" in fuzzer:
            await fuzzer["client"].disconnect()
