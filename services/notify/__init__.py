"""Notifications that arrive: signed webhooks (a Redis outbox and a delivery worker) and
e-mail to the on-call address. Both are event sinks (services/events.py); `Notifications`
builds them from settings, and the container adds the sinks and starts and stops them."""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis

from services.config import Settings
from services.crypto import Sealer
from services.events import EventSink
from services.metrics import Metrics
from services.notify.endpoints import (
    EVENT_TYPES,
    Endpoint,
    EndpointNotFound,
    EndpointReadOnly,
    EndpointStore,
    configured_endpoints,
)
from services.notify.mail import EmailSink, Presence, SmtpConfig, Transcripts
from services.notify.webhooks import DeliveryLog, DeliveryNotFound, WebhookOutbox, sign_headers
from services.notify.worker import DeliveryWorker

__all__ = [
    "EVENT_TYPES",
    "DeliveryNotFound",
    "EmailSink",
    "Endpoint",
    "EndpointNotFound",
    "EndpointReadOnly",
    "Notifications",
    "sign_headers",
]

log = logging.getLogger(__name__)


class Notifications:
    """The webhook outbox, its delivery worker and log, the endpoints, and the e-mail sink."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        sealer: Sealer,
        *,
        presence: Presence | None = None,
        transcripts: Transcripts | None = None,
        in_process: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        s = settings
        self.settings = settings
        self.in_process = in_process
        secret = s.webhook_secret.get_secret_value() if s.webhook_secret else None
        self.endpoints = EndpointStore(
            redis, s.redis_key_prefix, sealer, configured_endpoints(s.webhook_urls, secret)
        )
        self.outbox = WebhookOutbox(
            redis, s.redis_key_prefix, sealer, self.endpoints, ttl=s.webhook_log_ttl
        )
        self.deliveries = DeliveryLog(redis, s.redis_key_prefix)
        self.worker = DeliveryWorker(
            redis,
            s.redis_key_prefix,
            self.outbox,
            self.endpoints,
            retry_delays=s.webhook_retry_delays,
            jitter=s.webhook_retry_jitter,
            timeout=s.webhook_timeout,
            concurrency=s.webhook_concurrency,
            poll_interval=s.webhook_poll_interval,
            claim_idle=s.webhook_claim_idle,
            ttl=s.webhook_log_ttl,
            metrics=metrics,
        )
        self.email: EmailSink | None = None
        if s.smtp_host and s.oncall_email:
            self.email = EmailSink(
                SmtpConfig(
                    host=s.smtp_host,
                    port=s.smtp_port,
                    tls=s.smtp_tls,
                    user=s.smtp_user,
                    password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                    sender=s.smtp_from,
                    to=s.oncall_email,
                    timeout=s.smtp_timeout,
                ),
                presence=presence,
                transcripts=transcripts,
                retry_delays=s.smtp_retry_delays,
            )

    @property
    def sinks(self) -> list[EventSink]:
        return [self.outbox, *([self.email] if self.email else [])]

    async def start(self) -> None:
        if self.in_process:
            log.warning(
                "NO REDIS: webhook deliveries are queued in this process's memory; they are "
                "LOST on restart and not shared with other instances"
            )
        await self.worker.start()
        if self.email is not None:
            await self.email.start()

    async def aclose(self) -> None:
        if self.email is not None:
            await self.email.aclose()
        await self.worker.aclose()

    # -- the admin API ----------------------------------------------------------------
    async def create_endpoint(
        self,
        *,
        url: str,
        events: list[str] | None = None,
        secret: str | None = None,
        description: str = "",
    ) -> dict[str, Any]:
        """A new endpoint and its secret (returned once, never again)."""
        endpoint, secret = await self.endpoints.create(
            url=url, events=events, secret=secret, description=description
        )
        log.info("webhook endpoint added", extra={"endpoint_id": endpoint.id})
        return {**endpoint.public(), "secret": secret}

    async def list_endpoints(self) -> list[dict[str, Any]]:
        return [e.public() for e in await self.endpoints.all()]

    async def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return (await self.endpoints.get(endpoint_id)).public()

    async def delete_endpoint(self, endpoint_id: str) -> None:
        await self.endpoints.delete(endpoint_id)
        log.info("webhook endpoint deleted", extra={"endpoint_id": endpoint_id})

    async def redeliver(self, delivery_id: str) -> dict[str, Any]:
        return await self.deliveries.redeliver(delivery_id, self.settings.webhook_log_ttl)
