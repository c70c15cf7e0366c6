"""GET /api/v1/health and GET /health."""

from __future__ import annotations

from handlers import container, ok
from services.health import health_report


async def get_health():
    report, healthy = await health_report(container())
    return ok(report, 200 if healthy else 503)
