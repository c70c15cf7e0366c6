"""Webhooks in the Standard Webhooks format, queued in Redis: the outbox (an event sink) and
the delivery log. The delivery worker (services/notify/worker.py) sends what is queued here.

Publishing an event is one Redis transaction and nothing else: the event's body is stored
once (sealed), and one delivery per (event, endpoint) is recorded and XADDed to the stream
`P {webhooks}:stream`. A customer's reply never waits for a receiver.

Keys (P = REDIS_KEY_PREFIX), all expiring after WEBHOOK_LOG_TTL, all with the hash tag
`{webhooks}` (their transactions and the promote script stay in one Redis Cluster slot):
  P {webhooks}:stream            the deliveries to attempt now (consumer group `deliver`)
  P {webhooks}:retry             sorted set: delivery id -> when its next attempt is due (ms)
  P {webhooks}:event:<eventId>   hash: type, at, body (sealed), deliveries (JSON list of ids)
  P {webhooks}:delivery:<id>     JSON: endpoint, url, status, attempts, next attempt, last error
  P {webhooks}:log               sorted set: delivery id -> created (ms), newest last

The body is `{type, timestamp, data}`; the event's id travels in the `webhook-id` header and
is the same on every attempt and redelivery, so receivers de-duplicate on it (delivery is
at least once).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from standardwebhooks import Webhook

from services.crypto import Sealer
from services.errors import DomainError
from services.keys import WEBHOOKS
from services.notify.endpoints import EVENT_TYPES, EndpointStore, as_bytes, as_text
from services.sessions import iso, new_id
from services.store import guarded, now_ms

log = logging.getLogger(__name__)

GROUP = "deliver"
USER_AGENT = "supportbot-webhooks/1.0"
# pending: queued for its first attempt (or redelivered); retrying: waiting in the retry set;
# succeeded: a 2xx came back; failed: every retry of the schedule failed.
STATUSES = ("pending", "retrying", "succeeded", "failed")


class DeliveryNotFound(DomainError):
    status, code, title = 404, "WEBHOOK_DELIVERY_NOT_FOUND", "Webhook delivery not found"


class Keys:
    """Every webhook key, built in one place."""

    def __init__(self, key_prefix: str) -> None:
        base = key_prefix + WEBHOOKS
        self.stream = base + "stream"
        self.retry = base + "retry"
        self.log = base + "log"
        self._event = base + "event:"
        self._delivery = base + "delivery:"

    def event(self, event_id: str) -> str:
        return self._event + event_id

    def delivery(self, delivery_id: str) -> str:
        return self._delivery + delivery_id


def sign_headers(
    secret: str, event_id: str, body: str, at: datetime | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt (the timestamp is the attempt's)."""
    at = at or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, at, body),
    }


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A delivery as the admin API shows it (without internal counters)."""
    return {k: v for k, v in record.items() if k != "tries"}


class WebhookOutbox:
    """The event sink: one transaction queues one delivery per subscribed endpoint."""

    def __init__(
        self, redis: Redis, key_prefix: str, sealer: Sealer, endpoints: EndpointStore, ttl: int
    ) -> None:
        self.redis = redis
        self.keys = Keys(key_prefix)
        self.sealer = sealer
        self.endpoints = endpoints
        self.ttl = ttl
        self.published = asyncio.Event()  # wakes this instance's delivery worker

    def body_aad(self, event_id: str) -> bytes:
        return f"webhook-event:{event_id}".encode()

    async def publish(self, event_type: str, data: dict[str, Any]) -> None:
        await self.publish_event(event_type, data)

    @guarded
    async def publish_event(self, event_type: str, data: dict[str, Any]) -> str | None:
        """Queue the event for every endpoint that wants it; its id, or None when none does."""
        if event_type not in EVENT_TYPES:
            return None
        targets = [e for e in await self.endpoints.all() if e.wants(event_type)]
        if not targets:
            return None
        now = now_ms()
        event_id = "evt_" + new_id(12)
        body = json.dumps(
            {"type": event_type, "timestamp": iso(now), "data": data},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        deliveries: list[dict[str, Any]] = [
            {
                "id": "dlv_" + new_id(12),
                "eventId": event_id,
                "eventType": event_type,
                "endpointId": endpoint.id,
                "url": endpoint.url,
                "status": "pending",
                "attempts": [],
                "tries": 0,
                "nextAttemptAt": iso(now),
                "lastError": None,
                "createdAt": iso(now),
            }
            for endpoint in targets
        ]
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                k.event(event_id),
                mapping={
                    "type": event_type,
                    "at": str(now),
                    "body": self.sealer.seal(body.encode(), self.body_aad(event_id)),
                    "deliveries": json.dumps([d["id"] for d in deliveries]),
                },
            )
            pipe.expire(k.event(event_id), self.ttl)
            for d in deliveries:
                pipe.set(k.delivery(d["id"]), json.dumps(d), ex=self.ttl)
                pipe.zadd(k.log, {d["id"]: now})
                pipe.xadd(k.stream, {"delivery": d["id"]})
            pipe.zremrangebyscore(k.log, "-inf", now - self.ttl * 1000)
            await pipe.execute()
        self.published.set()
        log.info(
            "webhook event queued",
            extra={"event_type": event_type, "event_id": event_id, "deliveries": len(deliveries)},
        )
        return event_id

    async def body(self, event_id: str) -> str | None:
        sealed: bytes | str | None = await self.redis.hget(self.keys.event(event_id), "body")
        if sealed is None:
            return None
        return self.sealer.open(as_bytes(sealed), self.body_aad(event_id)).decode()


class DeliveryLog:
    """Reading the delivery log and redelivering, for the admin API."""

    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self.redis = redis
        self.keys = Keys(key_prefix)

    async def record(self, delivery_id: str) -> dict[str, Any] | None:
        raw: bytes | str | None = await self.redis.get(self.keys.delivery(delivery_id))
        return None if raw is None else dict(json.loads(raw))

    @guarded
    async def get(self, delivery_id: str) -> dict[str, Any]:
        record = await self.record(delivery_id)
        if record is None:
            raise DeliveryNotFound(f"no webhook delivery {delivery_id}")
        return public(record)

    @guarded
    async def find(
        self,
        *,
        event: str | None = None,
        endpoint: str | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Deliveries of one event, or the newest ones; filtered by endpoint and status."""
        if event is not None:
            raw_ids: bytes | str | None = await self.redis.hget(
                self.keys.event(event), "deliveries"
            )
            ids = [str(i) for i in json.loads(raw_ids)] if raw_ids else []
        else:
            newest: list[Any] = await self.redis.zrevrange(self.keys.log, 0, 999)
            ids = [as_text(i) for i in newest]
        if not ids:
            return []
        raws: list[bytes | str | None] = await self.redis.mget([self.keys.delivery(i) for i in ids])
        found = []
        for raw in raws:
            if raw is None:
                continue
            record = json.loads(raw)
            if (endpoint is None or record["endpointId"] == endpoint) and (
                status is None or record["status"] == status
            ):
                found.append(public(record))
            if len(found) >= limit:
                break
        return found

    @guarded
    async def redeliver(self, delivery_id: str, ttl: int) -> dict[str, Any]:
        """Queue the delivery again now (same event id), with a fresh retry schedule."""
        record = await self.record(delivery_id)
        if record is None:
            raise DeliveryNotFound(f"no webhook delivery {delivery_id}")
        record.update(status="pending", tries=0, nextAttemptAt=iso(now_ms()))
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(k.delivery(delivery_id), json.dumps(record), ex=ttl)
            pipe.zrem(k.retry, delivery_id)
            pipe.xadd(k.stream, {"delivery": delivery_id})
            pipe.expire(k.event(record["eventId"]), ttl)
            await pipe.execute()
        log.info("webhook redelivery queued", extra={"delivery_id": delivery_id})
        return public(record)
