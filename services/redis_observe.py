"""Every Redis command timed into `Metrics.redis_latency` and traced as a span.

`observe_redis(client, metrics)` wraps the client's own `execute_command` and the
`execute` of the pipelines it makes (Lua scripts run through `execute_command` too), so
no call site changes. Commands that block on purpose (XREAD/XREADGROUP with BLOCK, BLPOP
and friends) are traced but kept out of the latency histogram, which would otherwise
measure idle waits. Spans carry the command name only, never its arguments.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from services import tracing
from services.metrics import Metrics

BLOCKING = frozenset({"BLPOP", "BRPOP", "BLMOVE", "BZPOPMIN", "BZPOPMAX", "BLMPOP", "BZMPOP"})


def _name(command: Any) -> str:
    name = command.decode() if isinstance(command, bytes) else str(command)
    return name.upper()


def _blocks(name: str, args: tuple[Any, ...]) -> bool:
    if name in BLOCKING:
        return True
    if name in ("XREAD", "XREADGROUP"):
        return any(_name(a) == "BLOCK" for a in args if isinstance(a, str | bytes))
    return False


def _span_attributes(operation: str) -> dict[str, str]:
    return {"db.system.name": "redis", "db.operation.name": operation}


def observe_redis(client: Any, metrics: Metrics) -> Any:
    """Time and trace `client`'s commands and pipelines (the same client, returned)."""
    if getattr(client, "_supportbot_observed", False):
        return client
    command = client.execute_command

    @functools.wraps(command)
    async def execute_command(*args: Any, **options: Any) -> Any:
        name = _name(args[0]) if args else "UNKNOWN"
        started = time.perf_counter()
        with tracing.span(f"redis {name}", _span_attributes(name), kind="client"):
            try:
                return await command(*args, **options)
            finally:
                if not _blocks(name, args[1:]):
                    metrics.redis_latency.observe(time.perf_counter() - started)

    make_pipeline = client.pipeline

    @functools.wraps(make_pipeline)
    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        run = pipe.execute

        @functools.wraps(run)
        async def execute(*a: Any, **kw: Any) -> Any:
            operation = "MULTI" if getattr(pipe, "is_transaction", False) else "PIPELINE"
            attributes: dict[str, str | int] = {
                **_span_attributes(operation),
                "db.operation.batch.size": len(pipe),
            }
            started = time.perf_counter()
            with tracing.span(f"redis {operation}", attributes, kind="client"):
                try:
                    return await run(*a, **kw)
                finally:
                    metrics.redis_latency.observe(time.perf_counter() - started)

        pipe.execute = execute
        return pipe

    client.execute_command = execute_command
    client.pipeline = pipeline
    client._supportbot_observed = True
    return client
