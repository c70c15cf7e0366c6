"""The benchmark's baseline: a bare Starlette endpoint on the same uvicorn doing the same
Redis reads and writes as one chat message (get session, append, read context, append),
with no spec validation, no encryption and no classifier."""

from __future__ import annotations

import json
import os
import secrets
import time

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.store import APPEND_SCRIPT

PREFIX = os.environ.get("REDIS_KEY_PREFIX", "bench:baseline:")
redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9"))
append = redis.register_script(APPEND_SCRIPT)
TTL = 1_800_000


async def create_session(request: Request) -> JSONResponse:
    body = await request.json()
    sid = secrets.token_urlsafe(24)
    now = int(time.time() * 1000)
    key = f"{PREFIX}session:{{{sid}}}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"data": json.dumps(body), "status": "active", "createdAt": now})
        pipe.pexpire(key, TTL)
        pipe.zadd(f"{PREFIX}sessions:active", {sid: now + TTL})
        await pipe.execute()
    return JSONResponse({"success": True, "sessionId": sid})


async def send_message(request: Request) -> JSONResponse:
    body = await request.json()
    sid = body["sessionId"]
    session = f"{PREFIX}session:{{{sid}}}"  # the hash-tagged layout of services/keys.py
    keys = [session, f"{session}:messages", f"{PREFIX}sessions:active"]
    if not await redis.hgetall(keys[0]):
        return JSONResponse({"error": "not found"}, 404)
    now = int(time.time() * 1000)
    n, _held = await append(
        keys=keys, args=[json.dumps({"role": "user", "content": body["message"]}), TTL, now, sid]
    )
    await redis.lrange(keys[1], max(0, n - 11), n - 2)
    reply = {"role": "assistant", "content": "ok"}
    await append(keys=keys, args=[json.dumps(reply), TTL, now, sid])
    return JSONResponse({"success": True, "response": "ok"})


app = Starlette(
    routes=[
        Route("/api/v1/chat/session", create_session, methods=["POST"]),
        Route("/api/v1/chat/message", send_message, methods=["POST"]),
        Route("/api/v1/health", lambda r: JSONResponse({"status": "healthy"})),
    ]
)
