"""GET /metrics: this instance's Prometheus exposition (admin key or an admin's token;
without credentials on METRICS_PORT, see handlers/observe.py)."""

from __future__ import annotations

from handlers import container


async def get_metrics():
    # A str: Connexion answers it as the spec's text/plain (Prometheus reads plain text/plain
    # as its 0.0.4 text format, which is what this is).
    return (await container().prometheus.render()).decode(), 200
