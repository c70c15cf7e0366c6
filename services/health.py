"""The health report: can this instance serve, and how are its parts doing."""

from __future__ import annotations

import logging
from typing import Any

from services.errors import StorageUnavailable
from services.sessions import iso
from services.store import now_ms

log = logging.getLogger(__name__)


async def health_report(container: Any) -> tuple[dict[str, Any], bool]:
    """(report, healthy). Unhealthy only when session storage is unreachable."""
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
    report = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": iso(now_ms()),
        "version": s.version,
        "environment": s.app_env,
        "uptimeSeconds": container.metrics.uptime_seconds,
        "services": {
            "redis": redis_state,
            "openai": "configured" if s.provider_configured("openai") else "not configured",
            "gemini": "configured" if s.provider_configured("gemini") else "not configured",
            "activeSessions": active,
            "agentsOnline": agents_online,
        },
        "storage": storage,
        "responders": container.responder.status(),
        "counters": container.metrics.snapshot(),
        "knowledge": container.knowledge.stats(),
        "businessHours": container.handoff.hours.status(container.handoff.clock()),
    }
    return report, healthy
