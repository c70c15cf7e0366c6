"""Rate limits at the REST door (services/guard/limits.py does the counting).

`RequestLimit` is the ASGI layer for every request under /api/: per client address
(RATE_LIMIT_REQUESTS), or per agent token / admin key (RATE_LIMIT_AGENTS) when the request
carries one. A credential that turns out to be wrong (401) is charged to the address too,
and an address whose window is full gets no further credentialed requests through, so
made-up tokens do not buy a fresh window. `request_address()` is the client address of
the current Connexion request, for the handlers.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from connexion import request
from starlette.types import ASGIApp, Receive, Scope, Send

from handlers.problems import problem_body
from services.errors import RateLimited
from services.guard.limits import credential_key

log = logging.getLogger(__name__)
LIMITED_PREFIX = "/api/"


def _credential(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    key = headers.get(b"x-api-key", b"").decode("latin-1")
    return key or None


def scope_address(scope: Scope, limits: Any) -> str:
    """The client address of an ASGI scope (also the socket's: engineio passes its scope)."""
    client = scope.get("client")
    headers = dict(scope.get("headers") or [])
    forwarded = headers.get(b"x-forwarded-for")
    return str(
        limits.address(
            client[0] if client else None, forwarded.decode("latin-1") if forwarded else None
        )
    )


def request_address() -> str:
    """The client address of the current REST request."""
    limits = request.state.container.limits
    return str(
        limits.address(
            request.client.host if request.client else None,
            request.headers.get("x-forwarded-for"),
        )
    )


class RequestLimit:
    """429 problem+json with Retry-After once an address (or a credential) is over its limit."""

    def __init__(self, app: ASGIApp, container: Any) -> None:
        self.app, self.container = app, container

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits = self.container.limits
        if (
            scope["type"] != "http"
            or limits is None
            or not scope["path"].startswith(LIMITED_PREFIX)
        ):
            return await self.app(scope, receive, send)
        address = scope_address(scope, limits)
        credential = _credential(dict(scope.get("headers") or []))
        try:
            if credential is None:
                await limits.hit("requests", address)
            else:
                await limits.check("requests", address)
                await limits.hit("agents", credential_key(credential))
        except RateLimited as exc:
            return await too_many(send, exc)
        if credential is None:
            return await self.app(scope, receive, send)

        status = 0

        async def watch(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status == 401:
            with contextlib.suppress(RateLimited):  # answered; the next one is refused
                await limits.hit("requests", address)
        return None


async def too_many(send: Send, exc: RateLimited) -> None:
    body = json.dumps(
        {
            **problem_body(exc.status, exc.title, exc.detail, exc.type, exc.code),
            **exc.extensions,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(exc.retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
