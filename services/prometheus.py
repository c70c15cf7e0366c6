"""The Prometheus exposition of this instance (`GET /metrics`, and METRICS_PORT).

One endpoint per instance: each process exports its own counters since it started (from
`Metrics`, the responder chain's status and two gauges read from Redis at scrape time);
Prometheus scrapes every instance and sums across them (`sum by (...) (rate(...))`).
Counters restart from zero with the process, which `rate()` and `increase()` handle.
Figures that must survive restarts and agree across instances come from the analytics API.

Names follow Prometheus conventions: `supportbot_` prefix, base units (seconds), `_total`
for counters; label values come from bounded sets (route templates, provider names,
escalation rules), never ids or text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from services.metrics import Histogram, Histograms, Metrics

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what Prometheus asks for; the names need no escaping
BREAKER_STATES = ("closed", "open", "half_open", "misconfigured")


class Sources(Protocol):
    """What the exporter reads: the container's counters and live services."""

    metrics: Metrics
    responder: Any
    conversations: Any
    agents: Any


@dataclass
class Gauges:
    """Figures read from the shared store just before a scrape (None: not readable now)."""

    queue: dict[str, int] | None = None
    agents_online: int | None = None


def _counter(
    name: str, doc: str, labels: list[str], values: Iterable[tuple[Iterable[str], float]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family


def _histogram(
    name: str, doc: str, labels: list[str], histograms: Iterable[tuple[Iterable[str], Histogram]]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for label_values, h in histograms:
        buckets = [(_le(bound), float(n)) for bound, n in h.cumulative()]
        family.add_metric(list(label_values), buckets, h.sum)
    return family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _labelled(histograms: Histograms) -> list[tuple[tuple[str, ...], Histogram]]:
    return sorted(histograms.items())


class ContainerCollector:
    """Translates this instance's state into metric families at collect time."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.gauges = Gauges()

    def collect(self) -> Iterator[Metric]:
        m = self.sources.metrics
        yield _counter(
            "supportbot_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            sorted(m.http_requests.items()),
        )
        yield _histogram(
            "supportbot_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            _labelled(m.http_latency),
        )
        yield _counter(
            "supportbot_socket_connections",
            "Socket.IO connections accepted, by namespace.",
            ["namespace"],
            [((ns,), n) for ns, n in sorted(m.socket_connections.items())],
        )
        open_sockets = GaugeMetricFamily(
            "supportbot_socket_connections_open",
            "Socket.IO connections open now, by namespace.",
            labels=["namespace"],
        )
        for ns, n in sorted(m.sockets_open.items()):
            open_sockets.add_metric([ns], n)
        yield open_sockets
        yield _counter(
            "supportbot_sessions_created", "Chat sessions created.", [], [((), m.sessions_created)]
        )
        yield _counter(
            "supportbot_messages",
            "Messages in conversations, by sender (customer, agent).",
            ["sender"],
            [(("customer",), m.messages), (("agent",), m.agent_messages)],
        )
        yield _counter(
            "supportbot_replies",
            "Bot replies sent, by the provider that answered.",
            ["provider"],
            [((p,), n) for p, n in sorted(m.replies.items())],
        )
        yield _counter(
            "supportbot_escalations",
            "Escalation reasons raised (one escalation may have several), by rule.",
            ["reason"],
            [((r,), n) for r, n in sorted(m.escalations.items())],
        )
        yield _counter(
            "supportbot_conversation_transitions",
            "Conversation lifecycle steps, by event (escalate, claim, resolve, ...).",
            ["event"],
            [((e,), n) for e, n in sorted(m.transitions.items())],
        )
        yield _counter(
            "supportbot_csat_ratings",
            "Customer satisfaction ratings, by rating (1-5).",
            ["rating"],
            [((r,), n) for r, n in sorted(m.csat.items())],
        )
        yield _counter(
            "supportbot_failovers",
            "Switches from one responder to the next, by provider left and provider tried.",
            ["from_provider", "to_provider"],
            sorted(m.failovers.items()),
        )
        yield _counter(
            "supportbot_budget_skips",
            "Messages on which a spent token budget skipped the remote providers, by budget.",
            ["budget"],
            [((b,), n) for b, n in sorted(m.budget_skips.items())],
        )
        yield _counter(
            "supportbot_safety_flags",
            "Model replies withheld by the output check, by what they leaked.",
            ["leak"],
            [((k,), n) for k, n in sorted(m.safety_flags.items())],
        )
        yield _counter(
            "supportbot_rate_limited",
            "Requests, events and connections refused by a rate limit, by limit.",
            ["limit"],
            [((k,), n) for k, n in sorted(m.rate_limited.items())],
        )
        yield _counter(
            "supportbot_webhook_deliveries",
            "Webhook delivery attempts, by result (succeeded, retrying, failed).",
            ["result"],
            [((r,), n) for r, n in sorted(m.webhook_deliveries.items())],
        )
        yield _histogram(
            "supportbot_provider_latency_seconds",
            "Time of each responder attempt, by provider and outcome (success, failure).",
            ["provider", "outcome"],
            _labelled(m.provider_latency),
        )
        yield _histogram(
            "supportbot_redis_command_duration_seconds",
            "Time of each Redis command or pipeline (blocking reads left out).",
            [],
            [((), m.redis_latency)],
        )
        yield from self._providers()
        yield from self._gauges()

    def _providers(self) -> Iterator[Metric]:
        chain = self.sources.responder
        status: dict[str, dict[str, Any]] = chain.status() if chain is not None else {}
        configured = {name: s for name, s in status.items() if s.get("configured")}
        for name, field, doc in (
            ("attempts", "attempts", "Responder attempts (retries included), by provider."),
            ("failures", "failures", "Failed responder attempts, by provider."),
            ("retries", "retries", "Responder attempts that were retries, by provider."),
            ("skips", "skipped", "Responders passed by (breaker open, budget), by provider."),
        ):
            yield _counter(
                f"supportbot_provider_{name}",
                doc,
                ["provider"],
                [((p,), s[field]) for p, s in configured.items()],
            )
        yield _counter(
            "supportbot_provider_tokens",
            "Tokens used by provider and kind (prompt, completion).",
            ["provider", "kind"],
            [
                ((p, kind), n)
                for p, s in configured.items()
                for kind, n in sorted((s.get("tokens") or {}).items())
            ],
        )
        breaker = GaugeMetricFamily(
            "supportbot_breaker_state",
            "Circuit breaker state per provider: 1 for the current state, 0 for the others.",
            labels=["provider", "state"],
        )
        for provider, s in configured.items():
            for state in BREAKER_STATES:
                breaker.add_metric([provider, state], 1.0 if s.get("state") == state else 0.0)
        yield breaker

    def _gauges(self) -> Iterator[Metric]:
        if self.gauges.queue is not None:
            queue = GaugeMetricFamily(
                "supportbot_queue_conversations",
                "Conversations with people now, by status (escalated: waiting; assigned).",
                labels=["status"],
            )
            for status, n in sorted(self.gauges.queue.items()):
                queue.add_metric([status], n)
            yield queue
        if self.gauges.agents_online is not None:
            yield GaugeMetricFamily(
                "supportbot_agents_online", "Agents online now.", value=self.gauges.agents_online
            )

    async def refresh(self) -> None:
        """Read the queue and presence from the shared store (skipped if it fails)."""
        s = self.sources
        gauges = Gauges()
        try:
            if s.conversations is not None:
                _, counts = await s.conversations.queue()
                gauges.queue = dict(counts)
            if s.agents is not None:
                gauges.agents_online = int(await s.agents.online_count())
        except Exception as exc:  # a scrape still answers when Redis is away
            log.warning("metrics: queue and presence unavailable", extra={"error": str(exc)})
        self.gauges = gauges


class Exporter:
    """A registry of its own per app (not the global one), so several apps in one process
    (tests) each export their own figures."""

    def __init__(self, sources: Sources) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = ContainerCollector(sources)
        self.registry.register(self.collector)
        for default in (ProcessCollector, PlatformCollector, GCCollector):
            default(registry=self.registry)

    async def render(self) -> bytes:
        """The text exposition format (version 0.0.4)."""
        await self.collector.refresh()
        return generate_latest(self.registry)
