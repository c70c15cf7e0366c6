"""OpenTelemetry spans (services/tracing.py) from the SDK's in-memory exporter: HTTP
requests, socket events, responder attempts and Redis commands carry the right attributes
and never the customer's words; OTLP export when OTEL_* ask; a no-op without the extra."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.tracing import wanted
from tests.conftest import new_session
from tests.fakes.llm import RunningFake
from tests.responders.conftest import _openai_server, openai_fake  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
SECRET_WORDS = "my parcel 7 Elm Street never came"  # must appear in no span


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (installed once: OpenTelemetry allows one) with an
    in-memory exporter of this module's own."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    processor = SimpleSpanProcessor(memory)
    provider.add_span_processor(processor)
    yield memory
    processor.shutdown()


@pytest.fixture
async def traced(
    server_factory: Any,
    openai_fake: RunningFake,  # noqa: F811
    exporter: InMemorySpanExporter,
) -> Any:
    srv = await server_factory(
        openai_api_key="sk-test",
        openai_base_url=openai_fake.openai_url,
        openai_model="gpt-test-mini",
        ai_provider_order="openai,local",
        provider_max_retries=0,
    )
    exporter.clear()
    return srv


def attributes_of(spans: list[ReadableSpan]) -> list[tuple[str, dict[str, Any]]]:
    return [(s.name, dict(s.attributes or {})) for s in spans]


def assert_no_text(spans: list[ReadableSpan], *secrets: str) -> None:
    for span in spans:
        values = [span.name, *map(str, (span.attributes or {}).values())]
        for event in span.events:
            values += [event.name, *map(str, (event.attributes or {}).values())]
        for secret in secrets:
            assert not any(secret in v for v in values), (span.name, secret)


async def test_a_rest_message_gives_http_responder_and_redis_spans(traced, exporter):
    async with traced.client() as api:
        sid = await new_session(api)
        res = await api.post(
            "/api/v1/chat/message", json={"sessionId": sid, "message": SECRET_WORDS}
        )
        assert res.json()["provider"] == "openai"
        await api.get(f"/api/v1/chat/history/{sid}")
    spans = exporter.get_finished_spans()
    by_name = dict(attributes_of(spans))
    http = by_name["POST /api/v1/chat/message"]
    assert http["http.request.method"] == "POST"
    assert http["http.route"] == "/api/v1/chat/message"
    assert http["http.response.status_code"] == 200
    assert by_name["GET /api/v1/chat/history/{sessionId}"]["http.response.status_code"] == 200
    attempt = by_name["responder attempt"]
    assert attempt["gen_ai.provider.name"] == "openai"
    assert attempt["gen_ai.request.model"] == "gpt-test-mini"
    assert attempt["gen_ai.usage.input_tokens"] == 42
    assert attempt["gen_ai.usage.output_tokens"] == 17
    assert attempt["supportbot.outcome"] == "success"
    assert attempt["supportbot.attempt"] == 1
    redis_spans = [s for s in spans if s.name.startswith("redis ")]
    assert redis_spans and all(
        (s.attributes or {})["db.system.name"] == "redis" for s in redis_spans
    )
    assert {s.kind for s in redis_spans} == {trace.SpanKind.CLIENT}
    # the attempt and the Redis calls of the request sit under its HTTP span
    request = next(s for s in spans if s.name == "POST /api/v1/chat/message")
    attempt_span = next(s for s in spans if s.name == "responder attempt")
    assert attempt_span.context.trace_id == request.context.trace_id
    assert any(s.context.trace_id == request.context.trace_id for s in redis_spans)
    assert_no_text(spans, SECRET_WORDS, "Elm Street", sid, "Standard shipping")


async def test_a_failed_attempt_and_a_socket_event_are_traced(traced, exporter, openai_fake):  # noqa: F811
    openai_fake.fake.set(mode="status", status=503)
    client = socketio.AsyncClient()
    replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    joined: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    client.on("chat-joined", joined.put_nowait)
    client.on("message-received", replies.put_nowait)
    await client.connect(traced.url, transports=["websocket"])
    try:
        await client.emit("join-chat", {"userId": "user123"})
        sid = (await asyncio.wait_for(joined.get(), 10))["sessionId"]
        await client.emit("send-message", {"sessionId": sid, "message": SECRET_WORDS})
        while (reply := await asyncio.wait_for(replies.get(), 15))["isBot"] is not True:
            pass
        assert reply["provider"] == "local"
    finally:
        await client.disconnect()
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert "socket / connect" in names and "socket / join-chat" in names
    event = next(s for s in spans if s.name == "socket / send-message")
    assert dict(event.attributes or {}) == {
        "socketio.namespace": "/",
        "socketio.event": "send-message",
    }
    attempts = [dict(s.attributes or {}) for s in spans if s.name == "responder attempt"]
    failed = next(a for a in attempts if a["gen_ai.provider.name"] == "openai")
    assert failed["supportbot.outcome"] == "failure"
    assert failed["supportbot.failure_reason"] == "server error (503)"
    assert failed["error.type"] == "server error (503)"
    local = next(a for a in attempts if a["gen_ai.provider.name"] == "local")
    assert local["supportbot.outcome"] == "success"
    attempt_spans = [s for s in spans if s.name == "responder attempt"]
    assert {s.context.trace_id for s in attempt_spans} == {event.context.trace_id}
    assert_no_text(spans, SECRET_WORDS, "Elm Street", sid)


def test_otlp_export_is_wanted_only_when_the_variables_ask():
    assert not wanted({})
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert not wanted({**endpoint, "OTEL_SDK_DISABLED": "true"})
    assert not wanted({**endpoint, "OTEL_TRACES_EXPORTER": "none"})


def run_python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_spans_go_out_by_otlp_http_when_the_endpoint_is_set():
    """A real OTLP/HTTP request to a local receiver, from a process of its own (the
    tracer provider is global)."""
    out = run_python(
        """
        import http.server, threading, os
        got = []
        class Receiver(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                got.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200); self.end_headers()
            def log_message(self, *args): pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_port}"
        from services import tracing
        provider = tracing.configure_tracing("9.9.9")
        with tracing.span("redis GET", {"db.system.name": "redis"}):
            pass
        provider.shutdown()
        path, body = got[0]
        print(path, b"redis GET" in body, b"supportbot" in body, b"9.9.9" in body)
        """
    )
    assert out.split() == ["/v1/traces", "True", "True", "True"]


def test_without_the_extra_spans_are_no_ops_and_the_app_builds():
    out = run_python(
        """
        import sys
        for name in ("opentelemetry", "opentelemetry.trace"):
            sys.modules[name] = None  # as if the otel extra were not installed
        from services import tracing
        assert not tracing.available() and not tracing.recording()
        assert tracing.configure_tracing("1") is None
        with tracing.span("x", {"a": 1}) as span:
            span.set_attribute("b", 2)
        tracing.start_span("y").end()
        from app import create_app
        from tests.conftest import make_settings
        create_app(make_settings(redis_url="redis://127.0.0.1:1/0"))
        print("ok")
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:1",
    )
    assert out.strip().endswith("ok")
