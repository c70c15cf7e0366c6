"""The Analytics API: summary, timeseries and knowledge gaps, as JSON or CSV."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from connexion import request
from starlette.responses import Response

from handlers import container, ok
from services.errors import InvalidRange


def _analytics() -> Any:
    return container().analytics


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise InvalidRange(f"{value!r} is not a calendar day (YYYY-MM-DD)") from None


def _from(kwargs: dict[str, Any]) -> date | None:
    return _day(kwargs.get("from") or kwargs.get("from_"))


def _wants_csv(format: str | None) -> bool:
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _answer(body: dict[str, Any], format: str | None, name: str, to_csv: Callable) -> Any:
    if not _wants_csv(format):
        return ok(body)
    return Response(
        to_csv(body),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


async def get_summary(format: str | None = None, **kwargs: Any):
    a = _analytics()
    body = await a.summary(_from(kwargs), _day(kwargs.get("to")))
    return _answer(body, format, "analytics-summary", a.summary_csv)


async def get_timeseries(metric: str, bucket: str = "day", format: str | None = None, **kwargs):
    a = _analytics()
    body = await a.timeseries(metric, bucket, _from(kwargs), _day(kwargs.get("to")))
    return _answer(body, format, f"analytics-{metric}", a.timeseries_csv)


async def get_gaps(format: str | None = None, limit: int = 50, **kwargs: Any):
    a = _analytics()
    body = await a.gap_groups(_from(kwargs), _day(kwargs.get("to")), limit)
    return _answer(body, format, "analytics-gaps", a.gaps_csv)
