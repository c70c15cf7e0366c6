"""Fake OpenAI and Gemini servers speaking each API's real HTTP protocol.

One Starlette app answers `POST /v1/chat/completions` (JSON, or SSE `data:` lines ending
with `data: [DONE]`) and `POST /v1beta/models/{model}:generateContent` /
`:streamGenerateContent?alt=sse`. Switches on `Behaviour` make it slow, fail with a
status (and Retry-After), send malformed bodies, cut a stream after N chunks, delay the
first token, or hang.
"""

from __future__ import annotations

import asyncio
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
    mode: str = "ok"  # ok | status | malformed | hang | cut | not_json
    status: int = 500
    retry_after: str | None = None
    latency: float = 0.0  # seconds before answering
    first_token_delay: float = 0.0  # streaming: before the first chunk
    cut_after: int = 2  # mode "cut": chunks sent before the connection drops
    fail_times: int | None = None  # fail only the first N requests, then answer
    answer: str = "Standard shipping takes 3-5 business days."
    confidence: float = 0.9
    needs_human: bool = False
    sources: list[str] = field(default_factory=list)
    chunk_size: int = 8
    prompt_tokens: int = 42
    completion_tokens: int = 17


class FakeLLM:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.requests: list[dict[str, Any]] = []
        self.released = asyncio.Event()  # set at shutdown: hanging requests end quietly
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self.openai, methods=["POST"]),
            Route("/v1beta/models/{target:path}", self.gemini, methods=["POST"]),
        ])

    def set(self, **changes: Any) -> FakeLLM:
        self.behaviour = Behaviour(**changes)
        return self

    # -- shared --------------------------------------------------------------------
    def reply_json(self) -> str:
        b = self.behaviour
        return json.dumps({"answer": b.answer, "confidence": b.confidence, "needs_human": b.needs_human,
                           "human_reason": "", "sources": b.sources})

    def pieces(self) -> list[str]:
        text, size = self.reply_json(), self.behaviour.chunk_size
        return [text[i : i + size] for i in range(0, len(text), size)]

    async def failure(self) -> Response | None:
        """The configured failure for this request, if any (after the latency)."""
        b = self.behaviour
        if b.latency:
            await asyncio.sleep(b.latency)
        if b.fail_times is not None:
            if len(self.requests) > b.fail_times:
                return None
        if b.mode == "hang":
            await self.released.wait()
            return Response(status_code=503)
        if b.mode == "status":
            headers = {"retry-after": b.retry_after} if b.retry_after else {}
            return JSONResponse({"error": {"message": "fake failure", "code": b.status, "status": "UNAVAILABLE"}},
                                status_code=b.status, headers=headers)
        if b.mode == "not_json":
            return Response("<html>bad gateway</html>", status_code=200, media_type="application/json")
        return None

    async def sse(self, events: list[str]) -> AsyncIterator[bytes]:
        b = self.behaviour
        if b.first_token_delay:
            await asyncio.sleep(b.first_token_delay)
        for i, event in enumerate(events):
            if b.mode == "cut" and i >= b.cut_after:
                raise ConnectionResetError("fake stream cut")
            yield f"data: {event}\n\n".encode()
            await asyncio.sleep(0)

    # -- OpenAI --------------------------------------------------------------------
    async def openai(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append({"api": "openai", "body": body, "headers": dict(request.headers)})
        if (failed := await self.failure()) is not None:
            return failed
        b = self.behaviour
        content = "this is not json at all" if b.mode == "malformed" else self.reply_json()
        usage = {"prompt_tokens": b.prompt_tokens, "completion_tokens": b.completion_tokens,
                 "total_tokens": b.prompt_tokens + b.completion_tokens}
        if not body.get("stream"):
            return JSONResponse({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
                "usage": usage,
            })
        pieces = ["this is ", "not json"] if b.mode == "malformed" else self.pieces()

        def chunk(delta: dict, finish: str | None = None, with_usage: bool = False) -> str:
            return json.dumps({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                "choices": [] if with_usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
                "usage": usage if with_usage else None,
            })

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in pieces]
        events += [chunk({}, "stop"), chunk({}, with_usage=True), "[DONE]"]
        return StreamingResponse(self.sse(events), media_type="text/event-stream")

    # -- Gemini --------------------------------------------------------------------
    async def gemini(self, request: Request) -> Response:
        target = request.path_params["target"]
        body = await request.json()
        self.requests.append({"api": "gemini", "target": target, "body": body, "headers": dict(request.headers)})
        if (failed := await self.failure()) is not None:
            return failed
        b = self.behaviour
        usage = {"promptTokenCount": b.prompt_tokens, "candidatesTokenCount": b.completion_tokens,
                 "totalTokenCount": b.prompt_tokens + b.completion_tokens}

        def response(text: str, final: bool) -> dict:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
            if final:
                candidate["finishReason"] = "STOP"
            return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "fake"}

        if target.endswith(":generateContent"):
            text = "this is not json at all" if b.mode == "malformed" else self.reply_json()
            return JSONResponse(response(text, True))
        pieces = ["this is ", "not json"] if b.mode == "malformed" else self.pieces()
        events = [json.dumps(response(p, i == len(pieces) - 1)) for i, p in enumerate(pieces)]
        return StreamingResponse(self.sse(events), media_type="text/event-stream")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningFake:
    """A FakeLLM served by uvicorn on a free port, in the test's event loop."""

    def __init__(self, fake: FakeLLM, port: int, server: uvicorn.Server, task: asyncio.Task) -> None:
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
    server = uvicorn.Server(uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off", timeout_graceful_shutdown=0))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return RunningFake(fake, port, server, task)
