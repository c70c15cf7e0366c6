"""HTTP problems (RFC 9457), in one place: domain errors, Connexion's own validation
problems and unexpected failures all become `application/problem+json` with a stable
`type`, `title` and `code`, plus the proof of concept's `error` member. No stack traces."""

from __future__ import annotations

import json
import logging
import re

import connexion
from connexion.lifecycle import ConnexionRequest, ConnexionResponse

from services.contract import bundled_spec
from services.errors import DomainError, InvalidPayload

log = logging.getLogger("handlers.problems")


def problem_body(status: int, title: str, detail: str, type_: str, code: str) -> dict:
    return {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "error": detail,
        "code": code,
    }


def problem(
    status: int,
    title: str,
    detail: str,
    type_: str,
    code: str,
    headers: dict[str, str] | None = None,
    extensions: dict[str, object] | None = None,
) -> ConnexionResponse:
    body = {**problem_body(status, title, detail, type_, code), **(extensions or {})}
    return ConnexionResponse(
        status_code=status,
        mimetype="application/problem+json",
        content_type="application/problem+json",
        body=json.dumps(body),
        headers=headers or None,
    )


def domain_error(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, DomainError)
    (log.error if exc.status >= 500 else log.warning)(
        "request refused", extra={"code": exc.code, "status": exc.status}
    )
    return problem(
        exc.status,
        exc.title,
        exc.detail,
        exc.type,
        exc.code,
        headers=exc.headers,
        extensions=exc.extensions,
    )


def connexion_problem(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Connexion's own problems (validation, 404, 405, 415) with our `error` member."""
    assert isinstance(exc, connexion.ProblemException)
    status = exc.status or 500
    detail = str(exc.detail or exc.title or "error")
    if len(detail) > 300:  # validators quote the offending value; keep problems small
        detail = re.sub(r"^'(.{40}).*' (is |does |was )", r"'\1…' \2", detail, count=1, flags=re.S)
        detail = detail if len(detail) <= 300 else detail[:300] + "…"
    log.warning("request refused", extra={"status": status, "title": exc.title})
    title = exc.title or "Error"
    code = title.upper().replace(" ", "_")
    return problem(
        status, title, detail, exc.type or "about:blank", code, headers=dict(exc.headers or {})
    )


def http_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    status = getattr(exc, "status_code", 500)
    detail = str(getattr(exc, "detail", "") or "error")
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.url.path))
    return problem(
        status, detail, detail, "about:blank", detail.upper().replace(" ", "_"), headers=headers
    )


def _route_table() -> list[tuple[re.Pattern[str], list[str]]]:
    table = []
    for spec, base in (("openapi.yaml", "/api/v1"), ("root.yaml", "")):
        for template, item in bundled_spec(spec)["paths"].items():
            pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(base + template))
            methods = sorted(
                m.upper() for m in item if m in ("get", "put", "post", "delete", "patch")
            )
            table.append(
                (re.compile(pattern + "$"), methods + (["HEAD"] if "GET" in methods else []))
            )
    return table


ROUTES = _route_table()


def allowed_methods(path: str) -> list[str]:
    """What the spec allows on a path, for a 405's Allow header (RFC 9110)."""
    for pattern, methods in ROUTES:
        if pattern.match(path):
            return methods
    return []


def bad_encoding(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    err = InvalidPayload("request body is not valid UTF-8 JSON")
    return problem(err.status, err.title, err.detail, err.type, err.code)


async def unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log.error("unexpected error", exc_info=exc)
    return problem(
        500,
        "Internal Server Error",
        "Something went wrong on our side.",
        "about:blank",
        "INTERNAL_ERROR",
    )


def register(api: connexion.AsyncApp) -> None:
    """Map every kind of failure to a problem response."""
    api.add_error_handler(DomainError, domain_error)
    api.add_error_handler(connexion.ProblemException, connexion_problem)
    api.add_error_handler(UnicodeDecodeError, bad_encoding)
    api.add_error_handler(404, http_error)
    api.add_error_handler(405, http_error)
    api.add_error_handler(Exception, unexpected)
