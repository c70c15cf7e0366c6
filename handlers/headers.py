"""Security headers on every HTTP response, from one ASGI layer (the outermost, see app.py).

The pages in public/ are written for a Content-Security-Policy without `unsafe-inline`: no
`<script>` blocks, no `style="…"` attributes, no inline handlers; scripts and styles come
from their own files on this origin. `frame-ancestors` lets this origin and EMBED_ORIGINS
frame the pages (a company's own site embeds the chat), nobody else. API answers (JSON,
problems, the spec, Socket.IO's long-polling) may not be framed and load nothing. Swagger UI
(/api/v1/ui/, a developer's tool) is Connexion's own page with inline scripts; it gets a
policy that allows them and is still never framed.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from services.config import Settings

API_PREFIXES = ("/api/", "/health", "/socket.io")
SWAGGER_UI = "/api/v1/ui"


def page_policy(embed_origins: list[str]) -> str:
    ancestors = " ".join(["'self'", *embed_origins])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
        f"form-action 'self'; frame-ancestors {ancestors}"
    )


API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SWAGGER_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class SecurityHeaders:
    """Adds CSP, X-Content-Type-Options, Referrer-Policy (and X-Frame-Options when only this
    origin may frame) to each response that does not set them itself."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        frame = [] if settings.embed_origins else [(b"x-frame-options", b"SAMEORIGIN")]
        deny = [(b"x-frame-options", b"DENY")]
        self.page = [
            *common,
            *frame,
            (b"content-security-policy", page_policy(settings.embed_origins).encode()),
        ]
        self.api = [*common, *deny, (b"content-security-policy", API_POLICY.encode())]
        self.swagger = [*common, *deny, (b"content-security-policy", SWAGGER_POLICY.encode())]

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        if path.startswith(SWAGGER_UI):
            return self.swagger
        if path.startswith(API_PREFIXES):
            return self.api
        return self.page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = self.headers_for(scope["path"])

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                message["headers"] = headers + [h for h in extra if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)
        return None
