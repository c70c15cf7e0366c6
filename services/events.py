"""Domain events for the world outside: what happened to a conversation, for webhooks,
e-mail and anything else that subscribes. Services publish; sinks deliver.

Event types: conversation.escalated, conversation.assigned, conversation.resolved,
conversation.rated, ticket.created. `data` is JSON-ready and carries `sessionId`.
A sink must never slow the customer down: it records the event (e.g. in a Redis stream)
and delivers it in the background.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)


class EventSink(Protocol):
    async def publish(self, event_type: str, data: dict[str, Any]) -> None: ...


class Events:
    """Fans one event out to every sink; a failing sink is logged, never raised."""

    def __init__(self, sinks: list[EventSink] | None = None) -> None:
        self.sinks: list[EventSink] = list(sinks or [])

    def add(self, sink: EventSink) -> None:
        self.sinks.append(sink)

    async def publish(self, event_type: str, data: dict[str, Any]) -> None:
        for sink in self.sinks:
            try:
                await sink.publish(event_type, data)
            except Exception:
                log.exception("event sink failed", extra={"event_type": event_type})
