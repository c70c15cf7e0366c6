"""Socket payloads are validated against the same OpenAPI schemas as REST bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connexion.spec import Specification
from openapi_schema_validator import OAS30Validator

from services.errors import InvalidPayload

SPEC = Path(__file__).resolve().parent.parent / "openapi" / "openapi.yaml"


class EventSchemas:
    def __init__(self, spec_path: Path = SPEC) -> None:
        schemas = Specification.load(spec_path)["components"]["schemas"]
        self._validators = {
            "join-chat": OAS30Validator(schemas["JoinChatEvent"]),
            "send-message": OAS30Validator(schemas["SendMessageEvent"]),
            "join-agents": OAS30Validator(schemas["JoinAgentsEvent"]),
        }

    def check(self, event: str, data: Any) -> dict[str, Any]:
        """The payload if it matches the event's schema, else InvalidPayload naming the problem."""
        error = next(iter(self._validators[event].iter_errors(data)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "payload"
            raise InvalidPayload(f"{event}: {where}: {error.message[:200]}")
        return data
