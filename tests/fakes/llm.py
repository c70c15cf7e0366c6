"""Fake OpenAI and Gemini servers speaking each API's real HTTP protocol.

One Starlette app answers `POST /v1/chat/completions` (JSON, or SSE `data:` lines ending
with `data: [DONE]`) and `POST /v1beta/models/{model}:generateContent` /
`:streamGenerateContent?alt=sse`. Switches on `Behaviour` make it slow, fail with a
status (and Retry-After, or Gemini's RetryInfo), send malformed bodies, cut a stream after
N chunks, stall a stream after N chunks, delay the first token, refuse, block, or hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Behaviour:
    # ok | status | malformed | wrong_schema | not_json | hang | cut | stall | refusal | blocked
    # | odd_chunks (OpenAI, streaming: JSON events that are not chunk objects, `odd_chunk`)
    mode: str = "ok"
    status: int = 500
    retry_after: str | None = None  # the Retry-After header
    retry_delay: str | None = None  # Gemini: google.rpc.RetryInfo's retryDelay in the error body
    error_message: str = "fake failure"
    error_code: str | None = None  # OpenAI: error.code ("insufficient_quota", ...)
    latency: float = 0.0  # seconds before answering
    first_token_delay: float = 0.0  # streaming: before the first chunk
    cut_after: int = 2  # modes "cut" / "stall": chunks sent before the connection drops / hangs
    fail_times: int | None = None  # fail only the first N requests, then answer
    answer: str = "Standard shipping takes 3-5 business days."
    confidence: float = 0.9
    needs_human: bool = False
    sources: list[str] = field(default_factory=list)
    chunk_size: int = 8
    odd_chunk: Any = None  # mode "odd_chunks": the event sent after the first chunk
    prompt_tokens: int = 42
    completion_tokens: int = 17


class FakeLLM:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.requests: list[dict[str, Any]] = []
        self.tasks: dict[str, Any] = {}  # a side job's schema name -> the JSON to answer with
        self.task_latency = 0.0  # seconds before answering a side job (until reset)
        self.since_set = 0  # requests since the last `set`
        self.released = asyncio.Event()  # set at shutdown: hanging requests end quietly
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.openai, methods=["POST"]),
                Route("/v1beta/models/{target:path}", self.gemini, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        """Back to a healthy server with no history; requests still hanging end now."""
        self.released.set()
        self.released = asyncio.Event()
        self.behaviour = Behaviour()
        self.requests.clear()
        self.tasks.clear()
        self.task_latency = 0.0
        self.since_set = 0

    def set(self, **changes: Any) -> FakeLLM:
        self.behaviour = Behaviour(**changes)
        self.since_set = 0
        return self

    def record(self, entry: dict[str, Any]) -> None:
        self.requests.append(entry)
        self.since_set += 1

    # -- shared --------------------------------------------------------------------
    @staticmethod
    def task_name(body: dict[str, Any]) -> str | None:
        """The side job a request is for (services/responders/tasks.py): its JSON schema's
        name (OpenAI) or title (Gemini); None for an answer to the customer."""
        named = (body.get("response_format") or {}).get("json_schema") or {}
        titled = (body.get("generationConfig") or {}).get("responseJsonSchema") or {}
        name = named.get("name") or titled.get("title")
        return None if name in (None, "support_reply") else str(name)

    def reply_json(self, task: str | None = None) -> str:
        b = self.behaviour
        if task is not None and task in self.tasks and b.mode == "ok":
            return json.dumps(self.tasks[task])
        if b.mode == "malformed":
            return "this is not json at all"
        if b.mode == "wrong_schema":
            return json.dumps({"reply": b.answer, "certainty": "high"})
        return json.dumps(
            {
                "answer": b.answer,
                "confidence": b.confidence,
                "needs_human": b.needs_human,
                "human_reason": "",
                "sources": b.sources,
            }
        )

    def pieces(self) -> list[str]:
        text, size = self.reply_json(), self.behaviour.chunk_size
        return [text[i : i + size] for i in range(0, len(text), size)]

    def error_body(self, api: str) -> dict[str, Any]:
        b = self.behaviour
        if api == "openai":
            return {
                "error": {"message": b.error_message, "type": "fake_error", "code": b.error_code}
            }
        status = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            503: "UNAVAILABLE",
        }.get(b.status, "INTERNAL")
        error: dict[str, Any] = {"code": b.status, "message": b.error_message, "status": status}
        if b.retry_delay:
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": b.retry_delay}
            ]
        return {"error": error}

    async def failure(self, api: str) -> Response | None:
        """The configured failure for this request, if any (after the latency)."""
        b = self.behaviour
        if b.latency:
            await asyncio.sleep(b.latency)
        if b.fail_times is not None and self.since_set > b.fail_times:
            self.behaviour = Behaviour(**{**b.__dict__, "mode": "ok", "fail_times": None})
            return None
        if b.mode == "hang":
            await self.released.wait()
            return Response(status_code=503)
        if b.mode == "status":
            headers = {"retry-after": b.retry_after} if b.retry_after else {}
            return JSONResponse(self.error_body(api), status_code=b.status, headers=headers)
        if b.mode == "not_json":
            return Response(
                "<html>bad gateway</html>", status_code=200, media_type="application/json"
            )
        return None

    async def sse(self, events: list[str]) -> AsyncIterator[bytes]:
        b = self.behaviour
        if b.first_token_delay:
            await asyncio.sleep(b.first_token_delay)
        for i, event in enumerate(events):
            if b.mode == "cut" and i >= b.cut_after:
                raise ConnectionResetError("fake stream cut")  # uvicorn drops the connection
            if b.mode == "stall" and i >= b.cut_after:
                await self.released.wait()
                return
            yield f"data: {event}\n\n".encode()
            await asyncio.sleep(0)

    # -- OpenAI --------------------------------------------------------------------
    async def openai(self, request: Request) -> Response:
        body = await request.json()
        self.record({"api": "openai", "body": body, "headers": dict(request.headers)})
        if self.task_latency and self.task_name(body):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), self.task_latency)
        if (failed := await self.failure("openai")) is not None:
            return failed
        b = self.behaviour
        refusal = "I can't help with that." if b.mode == "refusal" else None
        content = None if refusal else self.reply_json(self.task_name(body))
        usage = {
            "prompt_tokens": b.prompt_tokens,
            "completion_tokens": b.completion_tokens,
            "total_tokens": b.prompt_tokens + b.completion_tokens,
        }
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 1,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {
                                "role": "assistant",
                                "content": content,
                                "refusal": refusal,
                            },
                        }
                    ],
                    "usage": usage,
                }
            )

        def chunk(delta: dict, finish: str | None = None, with_usage: bool = False) -> str:
            return json.dumps(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": body["model"],
                    "choices": []
                    if with_usage
                    else [{"index": 0, "delta": delta, "finish_reason": finish}],
                    "usage": usage if with_usage else None,
                }
            )

        events = [chunk({"role": "assistant", "content": ""})]
        if b.mode == "odd_chunks":
            events.append(json.dumps(b.odd_chunk))
        if refusal:
            events.append(chunk({"refusal": refusal}))
        else:
            events += [chunk({"content": piece}) for piece in self.pieces()]
        events += [chunk({}, "stop"), chunk({}, with_usage=True), "[DONE]"]
        return StreamingResponse(self.sse(events), media_type="text/event-stream")

    # -- Gemini --------------------------------------------------------------------
    async def gemini(self, request: Request) -> Response:
        target = request.path_params["target"]
        body = await request.json()
        self.record(
            {
                "api": "gemini",
                "target": target,
                "body": body,
                "headers": dict(request.headers),
                "query": dict(request.query_params),
            }
        )
        if (failed := await self.failure("gemini")) is not None:
            return failed
        b = self.behaviour
        usage = {
            "promptTokenCount": b.prompt_tokens,
            "candidatesTokenCount": b.completion_tokens,
            "totalTokenCount": b.prompt_tokens + b.completion_tokens,
        }

        def response(text: str, final: bool) -> dict:
            candidate: dict[str, Any] = {
                "content": {"role": "model", "parts": [{"text": text}]},
                "index": 0,
            }
            if final:
                candidate["finishReason"] = "STOP"
            return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "fake"}

        blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage}
        if target.endswith(":generateContent"):
            return JSONResponse(
                blocked
                if b.mode == "blocked"
                else response(self.reply_json(self.task_name(body)), True)
            )
        pieces = self.pieces()
        events = [json.dumps(response(p, i == len(pieces) - 1)) for i, p in enumerate(pieces)]
        if b.mode == "blocked":
            events = [json.dumps(blocked)]
        return StreamingResponse(self.sse(events), media_type="text/event-stream")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningFake:
    """A FakeLLM served by uvicorn on a free port, in the test's event loop."""

    def __init__(
        self, fake: FakeLLM, port: int, server: uvicorn.Server, task: asyncio.Task
    ) -> None:
        self.fake, self.port, self.server, self.task = fake, port, server, task

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def gemini_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.fake.released.set()
        self.server.should_exit = True
        self.server.force_exit = True
        await asyncio.wait_for(self.task, 10)


async def serve_fake(fake: FakeLLM | None = None) -> RunningFake:
    fake = fake or FakeLLM()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            fake.app,
            host="127.0.0.1",
            port=port,
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=0,
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return RunningFake(fake, port, server, task)
