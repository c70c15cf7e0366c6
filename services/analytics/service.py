"""Analytics: the recorder (an event sink), the settling job, and the reports."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from services.analytics import report
from services.analytics.clock import Clock, ms, system_clock
from services.analytics.episodes import Windows
from services.analytics.gaps import GapRecorder
from services.analytics.gaps import report as gap_report
from services.analytics.recorder import Event, Recorder
from services.analytics.store import AnalyticsStore, day_range
from services.background import Periodic
from services.batching import BatchQueue
from services.config import Settings
from services.errors import InvalidRange
from services.sessions import iso

MAX_DAYS = 366
MAX_HOUR_DAYS = 31
SETTLE_BATCH = 500
EARLIEST, LATEST = 2000, 9000  # years a range may name


class Analytics:
    def __init__(self, redis: Redis, settings: Settings, clock: Clock | None = None) -> None:
        s = settings
        self.settings = settings
        self.clock: Clock = clock or system_clock
        self.store = AnalyticsStore(redis, s.redis_key_prefix, s.analytics_timezone)
        self.windows = Windows(
            assumed=int(s.assumed_resolution_after * 1000),
            abandoned=int(s.analytics_abandoned_after * 1000),
            reopen=int(s.analytics_reopen_window * 1000),
        )
        self.gaps = GapRecorder(
            self.store,
            enabled=s.analytics_store_questions,
            region=s.pii_phone_region,
            retention_ms=int(s.analytics_retention_days * 86_400_000),
        )
        self.recorder = Recorder(self.store, self.windows, self._now, self.gaps)
        self.queue: BatchQueue[Event] = BatchQueue("analytics recording", self.recorder.record)
        self.job = Periodic("analytics settling", s.analytics_settle_interval, self.settle_due)

    def _now(self) -> float:
        return self.clock()

    # -- the sink and the job -----------------------------------------------------------
    async def publish(self, event_type: str, data: dict[str, Any]) -> None:
        """Accept an event, stamped now; once started, it is written in the background
        (with whatever else gathered meanwhile), else at once."""
        if self.recorder.accepts(event_type):
            await self.queue.put(self.recorder.event(event_type, data))

    async def flush(self) -> None:
        """Write every event this instance accepted so far."""
        await self.queue.flush()

    def start(self) -> None:
        self.queue.start()
        self.job.start()

    async def aclose(self) -> None:
        """Stop settling, then write what is still queued (nothing accepted is lost)."""
        await self.job.aclose()
        await self.queue.aclose()

    async def settle_due(self) -> int:
        """Settle every episode whose time-based outcome is due; safe on every instance
        (each settlement is a compare-and-set on the episode). The number looked at.
        This instance's queued events are written first: they happened before now."""
        await self.flush()
        now = ms(self.clock)
        due = await self.store.due(now, SETTLE_BATCH)
        for session_id in due:
            await self.recorder.settle(session_id)
        await self.gaps.expire(now)
        return len(due)

    # -- reports ------------------------------------------------------------------------
    def today(self) -> date:
        return self.store.local(ms(self.clock)).date()

    def span(self, first: date | None, last: date | None, max_days: int = MAX_DAYS) -> list[date]:
        last = last or self.today()
        first = first or last - timedelta(days=6)
        if first > last:
            raise InvalidRange("`from` is after `to`")
        if first.year < EARLIEST or last.year > LATEST:
            raise InvalidRange(f"days from {EARLIEST} to {LATEST} only")
        if (last - first).days + 1 > max_days:
            raise InvalidRange(f"at most {max_days} days at a time")
        return day_range(first, last)

    async def summary(self, first: date | None = None, last: date | None = None) -> dict[str, Any]:
        days = self.span(first, last)
        await self.flush()  # this instance's own events count at once
        rows = await self.store.days(days)
        total: Counter[str] = Counter()
        for fields in rows.values():
            total.update({k: v for k, v in fields.items() if "@" not in k})
        distinct = await self.store.distinct([self.store.users_key(d) for d in days])
        s = self.settings
        return {
            "from": days[0].isoformat(),
            "to": days[-1].isoformat(),
            "timezone": s.analytics_timezone,
            "generatedAt": iso(ms(self.clock)),
            **report.summary(total, distinct, s.analytics_prices, s.analytics_currency),
        }

    async def timeseries(
        self,
        metric: str,
        bucket: str = "day",
        first: date | None = None,
        last: date | None = None,
    ) -> dict[str, Any]:
        days = self.span(first, last, MAX_HOUR_DAYS if bucket == "hour" else MAX_DAYS)
        await self.flush()  # this instance's own events count at once
        rows = await self.store.days(days)
        s = self.settings
        points = []
        for day in days:
            fields = rows[day]
            buckets: list[tuple[int | None, Counter[str]]]
            if bucket == "day":
                buckets = [(None, Counter({k: v for k, v in fields.items() if "@" not in k}))]
            else:
                buckets = [(h, Counter()) for h in range(24)]
                for key, amount in fields.items():
                    hour_text, sep, name = key.partition("@")
                    if sep:
                        buckets[int(hour_text)][1][name] = amount
            for hour, counts in buckets:
                start = datetime(day.year, day.month, day.day, hour or 0, tzinfo=self.store.zone)
                point: dict[str, Any]
                if metric == "distinct_customers":
                    users = self.store.users_key(day, hour)
                    point = {"value": await self.store.distinct([users])}
                else:
                    point = report.point(metric, counts, s.analytics_prices, s.analytics_currency)
                points.append({"start": start.isoformat(), **point})
        body: dict[str, Any] = {
            "metric": metric,
            "bucket": bucket,
            "from": days[0].isoformat(),
            "to": days[-1].isoformat(),
            "timezone": s.analytics_timezone,
            "unit": report.UNITS.get(metric, "count"),
            "points": points,
        }
        if metric in report.DENOMINATORS:
            body["denominatorName"] = report.DENOMINATORS[metric]
        return body

    async def gap_groups(
        self, first: date | None = None, last: date | None = None, limit: int = 50
    ) -> dict[str, Any]:
        days = self.span(first, last)
        await self.flush()  # this instance's own events count at once
        zone = self.store.zone
        start = datetime(days[0].year, days[0].month, days[0].day, tzinfo=zone)
        end = datetime(days[-1].year, days[-1].month, days[-1].day, tzinfo=zone) + timedelta(days=1)
        records = await self.store.questions(
            int(start.timestamp() * 1000), int(end.timestamp() * 1000) - 1
        )
        groups = await asyncio.to_thread(gap_report, records, limit)
        return {
            "from": days[0].isoformat(),
            "to": days[-1].isoformat(),
            "storing": self.gaps.enabled,
            "total": len(records),
            "groups": groups,
        }

    # -- CSV ------------------------------------------------------------------------------
    @staticmethod
    def summary_csv(body: dict[str, Any]) -> str:
        return report.to_csv(
            ["metric", "value", "numerator", "denominator"], report.summary_rows(body)
        )

    @staticmethod
    def timeseries_csv(body: dict[str, Any]) -> str:
        keys = sorted({k for p in body["points"] for k in p.get("breakdown", {})})
        rows = [
            [p["start"], p["value"], p.get("numerator"), p.get("denominator")]
            + [p.get("breakdown", {}).get(k) for k in keys]
            for p in body["points"]
        ]
        return report.to_csv(["start", "value", "numerator", "denominator", *keys], rows)

    @staticmethod
    def gaps_csv(body: dict[str, Any]) -> str:
        rows = [
            [
                g["question"],
                g["count"],
                ";".join(f"{k}={v}" for k, v in g["reasons"].items()),
                g["firstSeen"],
                g["lastSeen"],
                " | ".join(g["examples"]),
            ]
            for g in body["groups"]
        ]
        return report.to_csv(
            ["question", "count", "reasons", "firstSeen", "lastSeen", "examples"], rows
        )
