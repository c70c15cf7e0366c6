"""This instance's counters, shown by /health and exported at /metrics
(services/prometheus.py translates them): services count here and nowhere else."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

# Seconds. Responders answer in ~1 ms (local) to tens of seconds (a slow model); HTTP and
# Redis calls in well under a second.
PROVIDER_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Histogram:
    """Fixed buckets (upper bounds, seconds): counts per bucket, the last one above them all."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sum: float = 0.0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.sum += value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                return
        self.counts[-1] += 1

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), ending with (inf, count)."""
        total, out = 0, []
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class Histograms(dict[tuple[str, ...], Histogram]):
    """Histograms by label values, created on first use."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        super().__init__()
        self.bounds = bounds

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        if (histogram := self.get(labels)) is None:
            histogram = self[labels] = Histogram(self.bounds)
        histogram.observe(value)


@dataclass
class Metrics:
    started_at: float = field(default_factory=time.time)
    messages: int = 0
    sessions_created: int = 0
    escalations: Counter[str] = field(default_factory=Counter)
    replies: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)
    csat: Counter[str] = field(default_factory=Counter)
    resolved: int = 0
    agent_messages: int = 0
    held_messages: int = 0
    budget_skips: Counter[str] = field(default_factory=Counter)  # remote providers skipped
    safety_flags: Counter[str] = field(default_factory=Counter)  # replies withheld, by leak
    # agents' replies: used:<origin> of a suggestion (edited too), or none (services/assist/)
    suggestions: Counter[str] = field(default_factory=Counter)
    failovers: Counter[tuple[str, str]] = field(default_factory=Counter)  # (from, to)
    rate_limited: Counter[str] = field(default_factory=Counter)  # refusals, by limit
    webhook_deliveries: Counter[str] = field(default_factory=Counter)  # attempts, by result
    sockets_open: Counter[str] = field(default_factory=Counter)  # by namespace, now
    socket_connections: Counter[str] = field(default_factory=Counter)  # by namespace, ever
    # (method, route template, status) -> requests; latency by (method, route template)
    http_requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    http_latency: Histograms = field(default_factory=lambda: Histograms(FAST_BUCKETS))
    # each responder attempt, by (provider, outcome: success | failure)
    provider_latency: Histograms = field(default_factory=lambda: Histograms(PROVIDER_BUCKETS))
    redis_latency: Histogram = field(default_factory=lambda: Histogram(FAST_BUCKETS))

    @property
    def uptime_seconds(self) -> float:
        return round(time.time() - self.started_at, 3)

    def snapshot(self) -> dict[str, object]:
        return {
            "messages": self.messages,
            "sessionsCreated": self.sessions_created,
            "escalations": dict(self.escalations),
            "escalationsTotal": sum(self.escalations.values()),
            "repliesByResponder": dict(self.replies),
            "transitions": dict(self.transitions),
            "agentMessages": self.agent_messages,
            "heldMessages": self.held_messages,
            "budgetSkips": dict(self.budget_skips),
            "safetyFlags": dict(self.safety_flags),
            "suggestions": {
                "used": sum(v for k, v in self.suggestions.items() if k.startswith("used:")),
                "usedByOrigin": {
                    k[5:]: v for k, v in self.suggestions.items() if k.startswith("used:")
                },
                "edited": self.suggestions["edited"],
                "none": self.suggestions["none"],
            },
            "failovers": {f"{a}->{b}": n for (a, b), n in self.failovers.items()},
            "rateLimited": dict(self.rate_limited),
            "webhookDeliveries": dict(self.webhook_deliveries),
            "csat": {
                "ratings": sum(self.csat.values()),
                "byRating": dict(self.csat),
                "average": (
                    round(
                        sum(int(k) * v for k, v in self.csat.items()) / sum(self.csat.values()), 3
                    )
                    if self.csat
                    else None
                ),
            },
        }
