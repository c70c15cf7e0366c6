"""The health report: can this instance serve, and how are its parts doing.

Anyone gets what a load balancer and the chat page need (status, timestamp, version,
environment, services with each responder's breaker state); the operational detail
(responders' errors and counts, counters, knowledge, storage, business hours) is for the
admin key or an admin's token."""

from __future__ import annotations

import logging
from typing import Any

from services.errors import StorageUnavailable
from services.sessions import iso
from services.store import now_ms

log = logging.getLogger(__name__)


async def health_report(container: Any, *, detail: bool = False) -> tuple[dict[str, Any], bool]:
    """(report, healthy), with the operational detail when `detail`. Unhealthy only when
    session storage is unreachable."""
    s = container.settings
    store = container.store
    storage: dict[str, Any] = {"backend": store.backend, "persistent": store.backend == "redis"}
    active: int | None = None
    healthy = True
    agents_online: int | None = None
    try:
        storage["latencyMs"] = round(await store.ping(), 3)
        active = await store.count_active()
        agents_online = await container.agents.online_count()
    except StorageUnavailable as exc:
        healthy = False
        storage["latencyMs"] = None
        storage["error"] = exc.detail
        log.warning("health: storage unreachable")
    redis_state = "connected" if store.backend == "redis" and healthy else "disconnected"
    responders = container.responder.status()
    report: dict[str, Any] = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": iso(now_ms()),
        "version": s.version,
        "environment": s.app_env,
        "services": {
            "redis": redis_state,
            "openai": "configured" if s.provider_configured("openai") else "not configured",
            "gemini": "configured" if s.provider_configured("gemini") else "not configured",
            "activeSessions": active,
            "agentsOnline": agents_online,
            "responders": {name: info["state"] for name, info in responders.items()},
        },
    }
    if detail:
        report |= {
            "uptimeSeconds": container.metrics.uptime_seconds,
            "storage": storage,
            "responders": responders,
            "counters": container.metrics.snapshot(),
            "knowledge": container.knowledge.stats(),
            "businessHours": container.handoff.hours.status(container.handoff.clock()),
        }
    return report, healthy
