"""Structured JSON logs: one line per event, carrying the request id and session id.

Message text, API keys and encryption keys never go into info-level records; callers
pass identifiers and counts through `extra=`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar

from services.guard.redact import RedactingFilter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
session_id_var: ContextVar[str | None] = ContextVar("session_id", default=None)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # redacted by RedactingFilter when it ran
            payload["exc"] = record.exc_text
        return json.dumps(payload, default=str, ensure_ascii=False)


def _with_context(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """Stamp each record with the request and session it was made in."""

    def make(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if (rid := request_id_var.get()) is not None:
            record.request_id = rid
        if (sid := session_id_var.get()) is not None:
            record.session_id = short_id(sid)
        return record

    make.stamps_context = True  # type: ignore[attr-defined]
    return make


def short_id(session_id: str) -> str:
    """Session ids grant access; logs carry a prefix that identifies without granting."""
    return session_id[:8] + "…" if len(session_id) > 8 else session_id


def configure_logging(level: str = "INFO", pii_region: str = "US") -> None:
    if not getattr(logging.getLogRecordFactory(), "stamps_context", False):
        logging.setLogRecordFactory(_with_context(logging.getLogRecordFactory()))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(pii_region))  # no personal data in any field, ever
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "httpcore", "engineio.server", "socketio.server"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
