"""Webhook endpoints: the ones named by WEBHOOK_URLS (with WEBHOOK_SECRET) and the ones an
admin adds through the API, each with its own `whsec_…` secret and event filter.

Added endpoints live in one Redis hash (`P {webhooks}:endpoints`, id -> sealed JSON), so every
instance sees the same set; their secrets are sealed at rest like sessions. The configured
ones have stable ids derived from the URL (`env-…`), the same on every instance and after a
restart, so a queued delivery always finds its endpoint again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis
from standardwebhooks import Webhook

from services.crypto import Sealer, SealError
from services.errors import DomainError, InvalidPayload
from services.keys import WEBHOOKS
from services.sessions import iso, new_id
from services.store import guarded, now_ms

EVENT_TYPES = (
    "conversation.escalated",
    "conversation.assigned",
    "conversation.resolved",
    "conversation.rated",
    "ticket.created",
)
SECRET_BYTES = 32


def as_bytes(value: bytes | str) -> bytes:
    """A Redis reply as bytes (the clients here do not decode responses)."""
    return value.encode() if isinstance(value, str) else value


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class EndpointNotFound(DomainError):
    status, code, title = 404, "WEBHOOK_ENDPOINT_NOT_FOUND", "Webhook endpoint not found"


class EndpointReadOnly(DomainError):
    status, code, title = 409, "WEBHOOK_ENDPOINT_READ_ONLY", "Webhook endpoint is configured"


def new_secret() -> str:
    """A fresh Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_secret(secret: str) -> str:
    try:
        Webhook(secret)
    except Exception as exc:  # the library raises bare binascii/ValueError for bad base64
        raise InvalidPayload("secret must be whsec_ followed by a base64 key") from exc
    if not secret.startswith("whsec_"):
        raise InvalidPayload("secret must be whsec_ followed by a base64 key")
    return secret


def check_url(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidPayload(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidPayload("the URL must be http:// or https:// with a host")
    return url


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    secret: str = field(repr=False)
    events: tuple[str, ...] = ()  # empty: every event type
    description: str = ""
    source: str = "api"  # "api" (added by an admin) or "settings" (WEBHOOK_URLS)
    created_at: int = 0

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def public(self) -> dict[str, Any]:
        """What the API shows: everything but the secret."""
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "source": self.source,
            "createdAt": iso(self.created_at) if self.created_at else None,
        }


def configured_endpoints(urls: list[str], secret: str | None) -> list[Endpoint]:
    """The WEBHOOK_URLS endpoints, with ids that are the same on every instance."""
    if not urls or not secret:
        return []
    return [
        Endpoint(
            id="env-" + hashlib.sha256(url.encode()).hexdigest()[:12],
            url=url,
            secret=secret,
            source="settings",
        )
        for url in urls
    ]


class EndpointStore:
    def __init__(
        self, redis: Redis, key_prefix: str, sealer: Sealer, configured: list[Endpoint]
    ) -> None:
        self.redis = redis
        self.key = f"{key_prefix}{WEBHOOKS}endpoints"
        self.sealer = sealer
        self.configured = {e.id: e for e in configured}

    def _aad(self, endpoint_id: str) -> bytes:
        return f"webhook-endpoint:{endpoint_id}".encode()

    @guarded
    async def create(
        self,
        *,
        url: str,
        events: list[str] | None = None,
        secret: str | None = None,
        description: str = "",
    ) -> tuple[Endpoint, str]:
        """Add an endpoint; returns it and its secret (generated unless given), shown once."""
        unknown = sorted(set(events or ()) - set(EVENT_TYPES))
        if unknown:
            raise InvalidPayload(f"unknown event types {unknown}")
        secret = check_secret(secret) if secret else new_secret()
        endpoint = Endpoint(
            id="ep_" + new_id(8),
            url=check_url(url),
            secret=secret,
            events=tuple(dict.fromkeys(events or ())),
            description=description,
            created_at=now_ms(),
        )
        record = {
            "url": endpoint.url,
            "secret": secret,
            "events": list(endpoint.events),
            "description": description,
            "createdAt": endpoint.created_at,
        }
        sealed = self.sealer.seal(json.dumps(record).encode(), self._aad(endpoint.id))
        await self.redis.hset(self.key, endpoint.id, sealed)
        return endpoint, secret

    @guarded
    async def all(self) -> list[Endpoint]:
        """Every endpoint: the configured ones first, then the added ones, oldest first."""
        raw: dict[bytes | str, bytes | str] = await self.redis.hgetall(self.key)
        added = [self._open(as_text(k), as_bytes(v)) for k, v in raw.items()]
        return list(self.configured.values()) + sorted(
            (e for e in added if e is not None), key=lambda e: (e.created_at, e.id)
        )

    @guarded
    async def get(self, endpoint_id: str) -> Endpoint:
        if endpoint_id in self.configured:
            return self.configured[endpoint_id]
        raw: bytes | str | None = await self.redis.hget(self.key, endpoint_id)
        endpoint = self._open(endpoint_id, as_bytes(raw)) if raw is not None else None
        if endpoint is None:
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
        return endpoint

    @guarded
    async def delete(self, endpoint_id: str) -> None:
        if endpoint_id in self.configured:
            raise EndpointReadOnly("this endpoint comes from WEBHOOK_URLS; change the setting")
        if not await self.redis.hdel(self.key, endpoint_id):
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")

    def _open(self, endpoint_id: str, sealed: bytes) -> Endpoint | None:
        try:
            record = json.loads(self.sealer.open(sealed, self._aad(endpoint_id)))
        except SealError:
            return None  # sealed with a key this instance no longer has
        return Endpoint(
            id=endpoint_id,
            url=str(record["url"]),
            secret=str(record["secret"]),
            events=tuple(record.get("events") or ()),
            description=str(record.get("description") or ""),
            created_at=int(record.get("createdAt") or 0),
        )
