"""Socket payloads are validated against the same OpenAPI schemas as REST bodies."""

from __future__ import annotations

from typing import Any

from connexion.json_schema import Draft4RequestValidator

from services.compiled_schema import accepts, compiled
from services.contract import resolved_schema
from services.errors import InvalidPayload

EVENT_SCHEMAS = {
    "join-chat": "JoinChatEvent",
    "send-message": "SendMessageEvent",
    "join-agents": "JoinAgentsEvent",
    "typing": "TypingEvent",
    "rate": "RateEvent",
    "leave-contact": "LeaveContactEvent",
    "identify": "IdentifyEvent",
    "agent:typing": "AgentTypingEvent",
    "agent:set-presence": "SetPresenceEvent",
    "agent:watch": "WatchEvent",
    "agent:unwatch": "WatchEvent",
    "agent:suggest": "SuggestEvent",
}


class EventSchemas:
    def __init__(self, spec: dict[str, Any]) -> None:
        schemas = {event: resolved_schema(name, spec) for event, name in EVENT_SCHEMAS.items()}
        self._validators = {
            event: Draft4RequestValidator(schema) for event, schema in schemas.items()
        }
        self._compiled = {event: compiled(schema) for event, schema in schemas.items()}

    def check(self, event: str, data: Any) -> dict[str, Any]:
        """The payload if it matches the event's schema, else InvalidPayload naming the problem.
        The compiled check accepts most payloads; what it refuses, jsonschema explains."""
        if accepts(self._compiled[event], data):
            return data
        error = next(iter(self._validators[event].iter_errors(data)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "payload"
            raise InvalidPayload(f"{event}: {where}: {error.message[:200]}")
        return data
