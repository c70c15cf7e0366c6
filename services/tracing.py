"""OpenTelemetry spans, when the optional `otel` extra is installed (`pip install .[otel]`).

Spans: one per HTTP request (handlers/observe.py), socket event (sockets/base.py),
responder attempt (services/responders/chain.py) and Redis command
(services/redis_observe.py). Attributes carry names, counts and outcomes, never message
text, Redis arguments or session ids.

Export: `configure_tracing()` installs an SDK tracer provider with the OTLP/HTTP exporter
when the standard variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`... as the SDK reads them;
`OTEL_SDK_DISABLED=true` turns it off). Without the extra, or without those variables,
every span here is a no-op and costs a function call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

_trace: Any = None  # opentelemetry.trace, when the otel extra is installed
try:
    from opentelemetry import trace as _otel_trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    _trace = _otel_trace
except ImportError:  # the otel extra is not installed: spans are no-ops
    pass

TRACER_NAME = "supportbot"
Attributes = Mapping[str, str | int | float | bool]


class _NoSpan:
    """Stands in for a span when OpenTelemetry is absent."""

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def set_attributes(self, attributes: Attributes) -> None:
        return None

    def end(self) -> None:
        return None

    def is_recording(self) -> bool:
        return False


NO_SPAN = _NoSpan()


def available() -> bool:
    """True when the OpenTelemetry API is installed."""
    return _trace is not None


_cached: list[Any] = []  # the tracer, once a real provider is installed (it stays)


def _tracer() -> Any:
    """The tracer, or None while no tracer provider is installed: the API's own no-op path
    costs tens of microseconds a span, this check about one."""
    if _cached:
        return _cached[0]
    if not recording():
        return None
    _cached.append(_trace.get_tracer(TRACER_NAME))
    return _cached[0]


def start_span(name: str, attributes: Attributes | None = None, *, kind: str = "internal") -> Any:
    """A span that the caller ends (`span.end()`), child of the current one; for code that
    yields or awaits across contexts (a generator), where a `with` block cannot hold it."""
    tracer = _tracer()
    if tracer is None:
        return NO_SPAN
    return tracer.start_span(name, kind=_kind(kind), attributes=dict(attributes or {}))


@contextmanager
def span(
    name: str, attributes: Attributes | None = None, *, kind: str = "internal"
) -> Iterator[Any]:
    """The current span for the block; an exception marks it as an error (no message text)."""
    tracer = _tracer()
    if tracer is None:
        yield NO_SPAN
        return
    with tracer.start_as_current_span(
        name,
        kind=_kind(kind),
        attributes=dict(attributes or {}),
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            fail(current, type(exc).__name__)
            raise


def fail(current: Any, error_type: str) -> None:
    """Mark a span as failed with the error's type (never its message)."""
    if _trace is None or not current.is_recording():
        return
    current.set_attribute("error.type", error_type)
    current.set_status(Status(StatusCode.ERROR))


def recording() -> bool:
    """True when spans go somewhere (a real tracer provider is installed)."""
    if _trace is None:
        return False
    return not isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider)


def _kind(kind: str) -> Any:
    return {"server": SpanKind.SERVER, "client": SpanKind.CLIENT}.get(kind, SpanKind.INTERNAL)


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """The OTEL_* variables ask for an OTLP export."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(service_version: str) -> Any:
    """Install an SDK tracer provider exporting by OTLP/HTTP, when the OTEL_* variables ask
    for it and the extra is installed; returns the provider (shut it down at exit) or None."""
    if not wanted():
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the otel extra is not installed "
            "(pip install '.[otel]'); no spans are exported"
        )
        return None
    assert _trace is not None  # the SDK imported, so the API did
    current = _trace.get_tracer_provider()
    if not isinstance(current, _trace.ProxyTracerProvider):
        return None  # someone (an auto-instrumentation agent, a test) installed one already
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", "supportbot"),
            "service.version": service_version,
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _trace.set_tracer_provider(provider)
    log.info("tracing: spans exported by OTLP")
    return provider
