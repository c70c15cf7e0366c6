"""Rate limits at the REST door (services/guard/limits.py does the counting).

`RequestLimit` is the ASGI layer for every request under /api/: per client address
(RATE_LIMIT_REQUESTS), or per agent token / admin key (RATE_LIMIT_AGENTS) when the request
carries one. A credential that turns out to be wrong (401) is charged to the address too,
and an address whose window is full gets no further credentialed requests through, so
made-up tokens do not buy a fresh window. `request_address()` is the client address of
the current Connexion request, for the handlers.

The chat's own POSTs (`COUNTED_BY_HANDLER`: a new session, a message) count the address in
their handler instead, together with their own limit in one call (`hit_with_request`);
one the handler never reached (a 400 from validation) is counted here as it is answered.
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
from services.guard.limits import Kind, credential_key

log = logging.getLogger(__name__)
LIMITED_PREFIX = "/api/"
COUNTED_BY_HANDLER = frozenset({("POST", "/api/v1/chat/session"), ("POST", "/api/v1/chat/message")})
PENDING = "requests_pending"  # scope state: the address whose request the handler counts


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


async def hit_with_request(kind: Kind, key: str) -> None:
    """Count this request against its address (when `RequestLimit` left that to the
    handler) and then against `kind`'s window for `key`, in one call."""
    limits = request.state.container.limits
    state = request.scope.get("state") or {}
    address = state.pop(PENDING, None)
    hits: list[tuple[Kind, str]] = [("requests", address)] if address is not None else []
    await limits.hit_many([*hits, (kind, key)])


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
        if credential is None and (scope["method"], scope["path"]) in COUNTED_BY_HANDLER:
            return await self._counted_by_handler(scope, receive, send, address)
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

    async def _counted_by_handler(
        self, scope: Scope, receive: Receive, send: Send, address: str
    ) -> None:
        """The handler counts the address (`hit_with_request`); an answer that did not come
        from it (validation's 400) counts it before it leaves, and is the 429 instead when
        the address is over its limit, as if counted first."""
        state = scope.setdefault("state", {})
        state[PENDING] = address
        refused = False

        async def count_unless_counted(message: Any) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and state.pop(PENDING, None):
                try:
                    await self.container.limits.hit("requests", address)
                except RateLimited as exc:
                    refused = True
                    await too_many(send, exc)
            if not refused:
                await send(message)

        await self.app(scope, receive, count_unless_counted)


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
