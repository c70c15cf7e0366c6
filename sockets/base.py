"""What every namespace shares: payloads validated against the spec's event schemas, and
every failure turned into an `error {message, code}` event that leaves the connection up."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

import socketio

from services import tracing
from services.errors import DomainError
from services.logs import request_id_var, session_id_var
from services.sessions import new_id
from sockets.validation import EventSchemas

log = logging.getLogger(__name__)
# The event's own count, while its handler may still make it with its own (`hit_with_event`).
_uncounted: ContextVar[str | None] = ContextVar("uncounted_socket_event", default=None)


class EventNamespace(socketio.AsyncNamespace):
    prefix = ""  # schema names of this namespace's events start with it (see validation.py)
    event_limit = "socket_events"  # the rate limit of its events (services/guard/limits.py)
    # events whose handler counts the event together with its own limit, in one round trip
    # (`hit_with_event`); one that fails before it does is counted on its way out
    counted_by_handler: frozenset[str] = frozenset()

    def __init__(self, namespace: str, container: Any, schemas: EventSchemas) -> None:
        super().__init__(namespace)
        self.container = container
        self.schemas = schemas

    def check(self, event: str, data: Any) -> dict[str, Any]:
        return self.schemas.check(self.prefix + event, data)

    async def hit_with_event(self, kind: str, key: str) -> None:
        """Count `kind` for `key`, and the event itself if its count is still pending."""
        event_key = _uncounted.get()
        _uncounted.set(None)
        limits = self.container.limits
        if event_key is None:
            await limits.hit(kind, key)
        else:
            await limits.hit_many([(self.event_limit, event_key), (kind, key)])

    async def fail(
        self, sid: str, code: str, message: str, extensions: dict[str, Any] | None = None
    ) -> None:
        await self.emit("error", {"message": message, "code": code, **(extensions or {})}, to=sid)

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Every event runs here, traced (services/tracing.py); connections are counted."""
        known = event in ("connect", "disconnect") or hasattr(self, "on_" + event.replace("-", "_"))
        name = event if known else "unknown"
        attributes = {"socketio.namespace": self.namespace, "socketio.event": name}
        with tracing.span(f"socket {self.namespace} {name}", attributes, kind="server"):
            result = await self._handle_event(event, *args)
        metrics = self.container.metrics
        if event == "connect" and result is not False:  # a refusal raised or returned False
            metrics.socket_connections[self.namespace] += 1
            metrics.sockets_open[self.namespace] += 1
        elif event == "disconnect":
            metrics.sockets_open[self.namespace] -= 1
        return result

    async def _handle_event(self, event: str, *args: Any) -> Any:
        """Unknown events and failures become `error` events."""
        request_id_var.set(new_id(8))
        session_id_var.set(None)
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid = args[0]
        handler = getattr(self, "on_" + event.replace("-", "_"), None)
        deferred = handler is not None and event in self.counted_by_handler
        _uncounted.set(self.namespace + sid if deferred else None)
        if not deferred:
            try:  # every event of a connection counts, unknown ones too
                await self.container.limits.hit(self.event_limit, self.namespace + sid)
            except DomainError as exc:
                await self.fail(sid, exc.code, exc.detail, exc.extensions)
                return None
        if handler is None:
            await self.fail(sid, "UNKNOWN_EVENT", f"unknown event {event[:64]!r}")
            return None
        try:
            async with self.container.inflight.track():  # a stopping instance lets it finish
                result = await handler(sid, args[1] if len(args) > 1 else None)
        except DomainError as exc:
            exc = await self._count_if_uncounted() or exc  # over the limit: as if counted first
            log.info("socket event refused", extra={"event": event, "code": exc.code})
            await self.fail(sid, exc.code, exc.detail, exc.extensions)
        except Exception:
            log.exception("socket event failed", extra={"event": event})
            await self._count_if_uncounted()
            await self.fail(sid, "INTERNAL_ERROR", "Something went wrong; please try again.")
        else:  # a handler that answered without counting its event: counted now
            await self._count_if_uncounted()
            return result
        return None

    async def _count_if_uncounted(self) -> DomainError | None:
        """Count the event if its handler did not; the refusal when that was one too many."""
        event_key = _uncounted.get()
        if event_key is None:
            return None
        _uncounted.set(None)
        try:
            await self.container.limits.hit(self.event_limit, event_key)
        except DomainError as exc:
            return exc
        return None
