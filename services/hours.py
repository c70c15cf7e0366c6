"""Business hours: when a person can answer. Parsed once from settings, pure arithmetic
after that (the clock is passed in, so tests fix it).

    BUSINESS_HOURS     "Mon-Fri 09:00-17:30; Sat 10:00-14:00" (unset: always open)
    BUSINESS_TIMEZONE  an IANA zone, e.g. "Europe/Berlin" (default UTC)
    HOLIDAYS           "2026-12-25, 2026-12-26" (closed all day, in that zone)

Times are wall-clock times in the business's zone, so opening hours stay 09:00 across a
daylight-saving change. A range may end at 24:00; ranges of one day may not overlap.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.i18n import Catalogues

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RULE = re.compile(
    r"^(?P<days>[a-z]{3}(?:\s*-\s*[a-z]{3})?(?:\s*,\s*[a-z]{3}(?:\s*-\s*[a-z]{3})?)*)\s+"
    r"(?P<ranges>\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}(?:\s*,\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2})*)$"
)


class BusinessHoursError(ValueError):
    """BUSINESS_HOURS, BUSINESS_TIMEZONE or HOLIDAYS cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class Window:
    start: int  # minutes after midnight
    end: int  # exclusive, up to 24 * 60


def _minutes(text: str) -> int:
    hours, minutes = (int(p) for p in text.split(":"))
    if not (0 <= minutes < 60 and (0 <= hours < 24 or (hours == 24 and minutes == 0))):
        raise BusinessHoursError(f"{text!r} is not a time of day")
    return hours * 60 + minutes


def _days(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        ends = [d.strip() for d in part.split("-")]
        for name in ends:
            if name not in DAYS:
                raise BusinessHoursError(f"{name!r} is not a day (use Mon, Tue, … Sun)")
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        span = range(first, last + 1) if first <= last else [*range(first, 7), *range(last + 1)]
        out.extend(span)
    return out


def parse_hours(text: str) -> dict[int, list[Window]]:
    """Weekday (0 = Monday) -> sorted, non-overlapping windows."""
    week: dict[int, list[Window]] = {d: [] for d in range(7)}
    for rule in (r.strip().lower() for r in text.split(";")):
        if not rule:
            continue
        found = RULE.match(rule)
        if found is None:
            raise BusinessHoursError(f"cannot read {rule!r}; write e.g. 'Mon-Fri 09:00-17:30'")
        for span in found["ranges"].split(","):
            start, end = (_minutes(t.strip()) for t in span.split("-"))
            if end <= start:
                raise BusinessHoursError(f"{span.strip()!r} ends before it starts")
            for day in _days(found["days"]):
                week[day].append(Window(start, end))
    for day, windows in week.items():
        windows.sort(key=lambda w: w.start)
        for a, b in itertools.pairwise(windows):
            if b.start < a.end:
                raise BusinessHoursError(f"overlapping hours on {DAYS[day].title()}")
    return week


class BusinessHours:
    def __init__(self, hours: str | None, timezone: str = "UTC", holidays: str | None = None):
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise BusinessHoursError(f"{timezone!r} is not an IANA time zone") from exc
        self.timezone = timezone
        self.week = parse_hours(hours) if hours and hours.strip() else None
        try:
            self.holidays = frozenset(
                date.fromisoformat(d.strip()) for d in (holidays or "").split(",") if d.strip()
            )
        except ValueError as exc:
            raise BusinessHoursError(
                f"HOLIDAYS: {exc} (write YYYY-MM-DD, comma-separated)"
            ) from exc

    @property
    def always_open(self) -> bool:
        return self.week is None

    def _windows(self, day: date) -> list[Window]:
        if self.week is None or day in self.holidays:
            return []
        return self.week[day.weekday()]

    def is_open(self, at: datetime) -> bool:
        if self.week is None:
            return True
        local = at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(w.start <= minute < w.end for w in self._windows(local.date()))

    def next_opening(self, at: datetime) -> datetime | None:
        """The next moment the business opens (now if it is open); None when always open."""
        if self.week is None:
            return None
        if self.is_open(at):
            return at
        local = at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        for offset in range(366 + 7):
            day = local.date() + timedelta(days=offset)
            for window in self._windows(day):
                if offset == 0 and window.start <= minute:
                    continue
                wall = datetime.combine(day, time(window.start // 60, window.start % 60))
                return wall.replace(tzinfo=self.zone)  # wall time: 09:00 stays 09:00 across DST
        return None  # no opening within a year (everything is a holiday)

    def status(self, at: datetime) -> dict[str, object]:
        opening = self.next_opening(at)
        return {
            "configured": not self.always_open,
            "openNow": self.is_open(at),
            "timezone": self.timezone,
            "nextOpening": None if opening is None else opening.isoformat(),
        }


def describe(
    moment: datetime,
    now: datetime,
    zone_name: str | None = None,
    catalogues: Catalogues | None = None,
    language: str = "en",
) -> str:
    """'today at 14:00', 'tomorrow at 09:00' or 'on Monday 5 January at 09:00' (in `language`,
    from the catalogues), in the customer's zone when known (valid IANA name), else the
    moment's own, with the zone named."""
    texts = catalogues or Catalogues.bundled()
    zone = moment.tzinfo
    if zone_name:
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            zone_name = None
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    clock = local.strftime("%H:%M")
    label = zone_name or getattr(zone, "key", None) or local.strftime("%Z")
    if local.date() == today:
        when = texts.text(language, "server.when_today", clock=clock)
    elif local.date() == today + timedelta(days=1):
        when = texts.text(language, "server.when_tomorrow", clock=clock)
    else:
        weekday = texts.words(language, "server.weekdays")[local.weekday()]
        month = texts.words(language, "server.months")[local.month - 1]
        when = texts.text(
            language,
            "server.when_date",
            weekday=weekday,
            day=local.day,
            month=month,
            clock=clock,
        )
    return texts.text(language, "server.when_zone", when=when, zone=label)
