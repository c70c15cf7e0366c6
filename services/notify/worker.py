"""The webhook delivery worker: a background task on every instance, never on a reply path.

All instances share one consumer group on `P {webhooks}:stream`, each instance one consumer,
so a delivery is attempted by one instance at a time. A loop:
  0. sleeps WEBHOOK_POLL_INTERVAL when there was nothing to do, or less when this instance
     published an event (no blocking read: the shared connection pool stays clean);
  1. moves retries that are due from the sorted set `P webhooks:retry` back to the stream
     (one Lua script, so a retry is moved exactly once);
  2. takes over deliveries a crashed instance left unacknowledged for WEBHOOK_CLAIM_IDLE
     seconds (XAUTOCLAIM);
  3. reads new ones (XREADGROUP) and attempts each in its own task (at most
     WEBHOOK_CONCURRENCY at once), bounded by WEBHOOK_TIMEOUT.
An attempt's outcome, its log entry, the next retry (exponential schedule with jitter) and
the stream acknowledgement are written in one transaction. On shutdown, deliveries still in
flight are handed back for an immediate retry, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import time
from collections.abc import Sequence
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from services.errors import DomainError
from services.events import EventSink
from services.metrics import Metrics
from services.notify.endpoints import EndpointStore
from services.notify.webhooks import GROUP, Keys, WebhookOutbox, sign_headers
from services.sessions import iso, new_id
from services.store import now_ms

log = logging.getLogger(__name__)

PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('XADD', KEYS[2], '*', 'delivery', id)
end
return #due
"""
ERROR_TEXT = 200  # characters of a receiver's error kept in the log


class DeliveryWorker:
    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        outbox: WebhookOutbox,
        endpoints: EndpointStore,
        *,
        retry_delays: Sequence[float],
        jitter: float,
        timeout: float,
        concurrency: int,
        poll_interval: float,
        claim_idle: float,
        ttl: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.redis = redis
        self.metrics = metrics or Metrics()  # attempts by result
        self.events: EventSink | None = None  # told of each delivery that ended (analytics)
        self.keys = Keys(key_prefix)
        self.outbox = outbox
        self.endpoints = endpoints
        self.retry_delays = list(retry_delays)
        self.jitter = jitter
        self.timeout = timeout
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.claim_idle_ms = int(claim_idle * 1000)
        self.ttl = ttl
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{new_id(3)}"
        self._promote = redis.register_script(PROMOTE)
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[str, tuple[str, asyncio.Task[None]]] = {}  # entry -> (delivery, task)
        self._last_claim = 0.0
        self._autoclaim = True
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout), follow_redirects=False
        )
        await self._ensure_group()
        self._task = asyncio.create_task(self._run(), name="webhook-delivery")
        log.info("webhook delivery worker started", extra={"consumer": self.consumer})

    async def aclose(self) -> None:
        self._stopping = True
        self.outbox.published.set()
        if self._task is not None:  # the loop ends at its next step; cancelled only if stuck
            done, _ = await asyncio.wait({self._task}, timeout=self.poll_interval + 5)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        inflight = list(self._inflight.items())
        for _, (_, task) in inflight:
            task.cancel()
        if inflight:
            await asyncio.gather(*(t for _, (_, t) in inflight), return_exceptions=True)
            await self._hand_back([(entry, did) for entry, (did, _) in inflight])
        self._inflight.clear()
        await self._leave_group()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.keys.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _hand_back(self, entries: list[tuple[str, str]]) -> None:
        """Deliveries interrupted by shutdown: due again now, for whichever instance is up."""
        now = now_ms()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for entry_id, delivery_id in entries:
                    pipe.zadd(self.keys.retry, {delivery_id: now})
                    pipe.xack(self.keys.stream, GROUP, entry_id)
                    pipe.xdel(self.keys.stream, entry_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning(
                "webhook deliveries in flight at shutdown wait for another instance "
                "(WEBHOOK_CLAIM_IDLE)",
                extra={"error": type(exc).__name__, "deliveries": len(entries)},
            )

    async def _leave_group(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            pending = await self.redis.xpending_range(
                self.keys.stream, GROUP, min="-", max="+", count=1, consumername=self.consumer
            )
            if not pending:
                await self.redis.xgroup_delconsumer(self.keys.stream, GROUP, self.consumer)

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if "NOGROUP" in str(exc):
                    with contextlib.suppress(RedisError, OSError):
                        await self._ensure_group()
                    continue
                log.warning(
                    "webhook worker: Redis error",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:200]},
                )
                await asyncio.sleep(self.poll_interval)
            except Exception:
                log.exception("webhook worker: unexpected error")
                await asyncio.sleep(self.poll_interval)

    async def _tick(self) -> None:
        started = time.monotonic()
        await self._promote(keys=[self.keys.retry, self.keys.stream], args=[now_ms(), 100])
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            await asyncio.wait(
                [t for _, t in self._inflight.values()],
                timeout=self.poll_interval,
                return_when=asyncio.FIRST_COMPLETED,
            )
            return
        entries = await self._claim(free)
        if len(entries) < free:
            entries += await self._read(free - len(entries))
        for entry_id, fields in entries:
            self._spawn(entry_id, fields)
        if not entries:
            rest = self.poll_interval - (time.monotonic() - started)
            if rest > 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(rest):
                        await self.outbox.published.wait()
            if not self._stopping:
                self.outbox.published.clear()

    async def _read(self, count: int) -> list[tuple[str, dict[bytes, bytes]]]:
        reply: Any = await self.redis.xreadgroup(
            GROUP,
            self.consumer,
            {self.keys.stream: ">"},
            count=count,
        )
        found: list[tuple[str, dict[bytes, bytes]]] = []
        for _stream, items in reply or []:
            found += [(_text(eid), fields or {}) for eid, fields in items]
        return found

    async def _claim(self, count: int) -> list[tuple[str, dict[bytes, bytes]]]:
        """Deliveries that a crashed instance took and never acknowledged."""
        if not self._autoclaim or time.monotonic() - self._last_claim < 1.0:
            return []
        self._last_claim = time.monotonic()
        try:
            reply: Any = await self.redis.xautoclaim(
                self.keys.stream,
                GROUP,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id="0-0",
                count=count,
            )
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                raise
            self._autoclaim = False
            log.error(
                "XAUTOCLAIM is not supported by this Redis (6.2+ needed): deliveries of a crashed "
                "instance are NOT taken over by the others",
                extra={"error": str(exc)},
            )
            return []
        claimed = [(_text(eid), fields or {}) for eid, fields in reply[1]]
        for eid in reply[2] if len(reply) > 2 else []:  # deleted while pending
            await self.redis.xack(self.keys.stream, GROUP, eid)
        claimed = [(eid, f) for eid, f in claimed if eid not in self._inflight]
        if claimed:
            log.warning("webhook deliveries taken over", extra={"deliveries": len(claimed)})
        return claimed

    def _spawn(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        delivery_id = _text(fields.get(b"delivery", b""))
        task = asyncio.create_task(self._deliver(entry_id, delivery_id))
        self._inflight[entry_id] = (delivery_id, task)
        task.add_done_callback(lambda _t: self._inflight.pop(entry_id, None))

    # -- one attempt ---------------------------------------------------------------------
    async def _deliver(self, entry_id: str, delivery_id: str) -> None:
        try:
            await self._attempt(entry_id, delivery_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # logged; the entry stays pending and is claimed again later
            log.exception("webhook delivery crashed", extra={"delivery_id": delivery_id})

    async def _attempt(self, entry_id: str, delivery_id: str) -> None:
        k = self.keys
        raw: bytes | str | None = (
            await self.redis.get(k.delivery(delivery_id)) if delivery_id else None
        )
        record: dict[str, Any] | None = json.loads(raw) if raw else None
        if record is None or record["status"] not in ("pending", "retrying"):
            await self._ack(entry_id)  # expired, or already settled by an earlier entry
            return
        body = await self.outbox.body(record["eventId"])
        error: str | None = None
        status: int | None = None
        started = time.monotonic()
        if body is None:
            error = "the event has expired"
        else:
            try:
                endpoint = await self.endpoints.get(record["endpointId"])
            except DomainError:
                error = "the endpoint was deleted"
            else:
                status, error = await self._post(endpoint.url, endpoint.secret, record, body)
        latency = int((time.monotonic() - started) * 1000)
        await self._settle(entry_id, record, status, error, latency, final=body is None)

    async def _post(
        self, url: str, secret: str, record: dict[str, Any], body: str
    ) -> tuple[int | None, str | None]:
        assert self._client is not None
        headers = sign_headers(secret, record["eventId"], body)
        try:
            async with asyncio.timeout(self.timeout):
                res = await self._client.post(url, content=body.encode(), headers=headers)
        except TimeoutError:
            return None, f"timed out after {self.timeout:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:ERROR_TEXT] or type(exc).__name__
        if 200 <= res.status_code < 300:
            return res.status_code, None
        return res.status_code, f"HTTP {res.status_code}: {res.text[:ERROR_TEXT]}".strip()

    async def _settle(
        self,
        entry_id: str,
        record: dict[str, Any],
        status: int | None,
        error: str | None,
        latency: int,
        *,
        final: bool = False,
    ) -> None:
        now = now_ms()
        record["attempts"].append(
            {"at": iso(now), "status": status, "latencyMs": latency, "error": error}
        )
        due: float | None = None
        if error is None:
            record.update(status="succeeded", nextAttemptAt=None, lastError=None)
        else:
            tries = int(record.get("tries", 0)) + 1
            record["tries"] = tries
            record["lastError"] = error
            if not final and tries <= len(self.retry_delays):
                spread = 1 + random.uniform(-self.jitter, self.jitter)
                due = now + self.retry_delays[tries - 1] * 1000 * spread
                record.update(status="retrying", nextAttemptAt=iso(int(due)))
            else:
                record.update(status="failed", nextAttemptAt=None)
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(k.delivery(record["id"]), json.dumps(record), ex=self.ttl)
            pipe.expire(k.event(record["eventId"]), self.ttl)
            if due is not None:
                pipe.zadd(k.retry, {record["id"]: due})
            pipe.xack(k.stream, GROUP, entry_id)
            pipe.xdel(k.stream, entry_id)
            await pipe.execute()
        self.metrics.webhook_deliveries[record["status"]] += 1
        extra = {
            "delivery_id": record["id"],
            "event_id": record["eventId"],
            "endpoint_id": record["endpointId"],
            "status": status,
            "latency_ms": latency,
        }
        if self.events is not None and record["status"] in ("succeeded", "failed"):
            result = "delivered" if record["status"] == "succeeded" else "failed"
            await self.events.publish("webhook.delivery", {"result": result})
        if error is None:
            log.info("webhook delivered", extra=extra)
        elif record["status"] == "failed":
            log.error("webhook delivery failed for good", extra={**extra, "error": error})
        else:
            log.warning("webhook attempt failed; will retry", extra={**extra, "error": error})

    async def _ack(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.keys.stream, GROUP, entry_id)
            pipe.xdel(self.keys.stream, entry_id)
            await pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
