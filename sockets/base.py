"""What every namespace shares: payloads validated against the spec's event schemas, and
every failure turned into an `error {message, code}` event that leaves the connection up."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from services import tracing
from services.errors import DomainError
from services.logs import request_id_var, session_id_var
from services.sessions import new_id
from sockets.validation import EventSchemas

log = logging.getLogger(__name__)


class EventNamespace(socketio.AsyncNamespace):
    prefix = ""  # schema names of this namespace's events start with it (see validation.py)
    event_limit = "socket_events"  # the rate limit of its events (services/guard/limits.py)

    def __init__(self, namespace: str, container: Any, schemas: EventSchemas) -> None:
        super().__init__(namespace)
        self.container = container
        self.schemas = schemas

    def check(self, event: str, data: Any) -> dict[str, Any]:
        return self.schemas.check(self.prefix + event, data)

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
        try:  # every event of a connection counts, unknown ones too
            await self.container.limits.hit(self.event_limit, self.namespace + sid)
        except DomainError as exc:
            await self.fail(sid, exc.code, exc.detail, exc.extensions)
            return None
        handler = getattr(self, "on_" + event.replace("-", "_"), None)
        if handler is None:
            await self.fail(sid, "UNKNOWN_EVENT", f"unknown event {event[:64]!r}")
            return None
        try:
            async with self.container.inflight.track():  # a stopping instance lets it finish
                return await handler(sid, args[1] if len(args) > 1 else None)
        except DomainError as exc:
            log.info("socket event refused", extra={"event": event, "code": exc.code})
            await self.fail(sid, exc.code, exc.detail, exc.extensions)
        except Exception:
            log.exception("socket event failed", extra={"event": event})
            await self.fail(sid, "INTERNAL_ERROR", "Something went wrong; please try again.")
        return None
