"""CPU the web framework spends on one chat message, apart from the service: the real app
(production settings, every middleware, Connexion's routing, body validation and
decorators) called in-process through ASGI, with the chat service's `send` and the
handler's rate-limit call replaced by ones that do nothing, so only the framework's work
is timed (no HTTP parsing, no network). This is the part of P1's "full path" that the
same-work baseline (bench/samework_app.py) does not pay.

    python -m bench.framework_cost [--requests 3000] [--profile [--sort cumulative]]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import time
from collections.abc import MutableMapping
from typing import Any

import uvicorn

from bench.rest_load import bench_env, delete_keys, free_port


def isolate_the_framework() -> None:
    """The handler's service call and rate-limit round trip become no-ops (this process only)."""
    from connexion import request

    import handlers.chat
    from handlers.limits import PENDING
    from services.chat import ChatResult, ChatService

    async def counted(*args: Any, **kwargs: Any) -> None:
        (request.scope.get("state") or {}).pop(PENDING, None)  # as if counted

    async def answered(self: ChatService, *, session_id: str, **kwargs: Any) -> ChatResult:
        return ChatResult(
            session_id=session_id,
            message_id="m" * 12,
            text="Standard shipping takes 3-5 business days.",
            timestamp="2026-11-30T08:00:00.000Z",
            confidence=0.9,
            provider="local",
            sources=(),
        )

    handlers.chat.hit_with_request = counted
    ChatService.send = answered  # type: ignore[method-assign]


async def run(requests: int, profile: cProfile.Profile | None) -> dict[str, Any]:
    from app import create_app
    from services.config import load_settings

    app = create_app(load_settings())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
        await asyncio.sleep(0.05)
    body = json.dumps({"sessionId": "s" * 32, "message": "Where is my order?"}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/chat/message",
        "raw_path": b"/api/v1/chat/message",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 3000),
    }
    state = server.lifespan.state  # what uvicorn hands each request: the app's container

    async def one() -> int:
        messages: list[MutableMapping[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never leaves
            raise AssertionError("unreachable")

        async def send(message: MutableMapping[str, Any]) -> None:
            messages.append(message)

        await app({**scope, "state": state.copy()}, receive, send)
        return int(messages[0]["status"])

    try:
        for _ in range(200):  # warm-up
            status = await one()
        if status != 200:
            raise RuntimeError(f"the app answered {status}")
        if profile is not None:
            profile.enable()
        cpu = time.process_time()
        for _ in range(requests):
            await one()
        spent = time.process_time() - cpu
        if profile is not None:
            profile.disable()
    finally:
        server.should_exit = True
        await task
    return {"framework_cpu_us_per_request": round(spent / requests * 1e6, 1), "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    parser.add_argument("--sort", default="tottime", help="the profile's order (cumulative, …)")
    args = parser.parse_args()
    redis_url, prefix, env = bench_env()
    os.environ.update(env)
    isolate_the_framework()
    profile = cProfile.Profile() if args.profile else None
    try:
        result = asyncio.run(run(args.requests, profile))
    finally:
        delete_keys(redis_url, prefix)
    print(json.dumps({"framework_cost": result}, indent=2))
    if profile is not None:
        pstats.Stats(profile).strip_dirs().sort_stats(args.sort).print_stats(40)


if __name__ == "__main__":
    main()
