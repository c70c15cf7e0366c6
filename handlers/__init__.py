"""REST handlers, routed by operationId from openapi/. Each validates (the spec already
did), calls one service and shapes the response."""

from __future__ import annotations

from typing import Any

from connexion import request

JSON = {"Content-Type": "application/json"}


def container() -> Any:
    """The started services of this app (see app.lifespan)."""
    return request.state.container


def ok(body: dict[str, Any], status: int = 200) -> tuple[dict[str, Any], int, dict[str, str]]:
    return body, status, JSON
