"""REST handlers, routed by operationId from openapi/. Each validates (the spec already
did), calls one service and shapes the response."""

from __future__ import annotations

from typing import Any

import orjson
from connexion import request
from starlette.responses import Response

JSON = {"Content-Type": "application/json"}


class JSONBody(Response):
    """A JSON answer, serialized once by orjson. Connexion passes a ready response through;
    given a (dict, status, headers) tuple it unpacks it, looks up the content type and
    serializes with the standard library (`python -m bench.framework_cost --profile`)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def container() -> Any:
    """The started services of this app (see app.lifespan)."""
    return request.state.container


def ok(body: dict[str, Any], status: int = 200) -> JSONBody:
    return JSONBody(body, status)
