"""GET /api/v1/health and GET /health: public, with the detail for the admin key or an
admin's token (optional security in the spec: no credential is the public view)."""

from __future__ import annotations

from connexion.context import context

from handlers import container, ok
from services.health import health_report


async def get_health():
    detail = bool((context.get("token_info") or {}).get("sub"))
    report, healthy = await health_report(container(), detail=detail)
    return ok(report, 200 if healthy else 503)
