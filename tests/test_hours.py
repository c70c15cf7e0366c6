"""Business hours arithmetic with a fixed clock: windows, holidays, DST, errors."""

from datetime import UTC, datetime

import pytest

from services.hours import BusinessHours, BusinessHoursError, describe

BERLIN = "Europe/Berlin"
SHOP = "Mon-Fri 09:00-17:30; Sat 10:00-14:00"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_unset_means_always_open():
    hours = BusinessHours(None)
    assert hours.always_open and hours.is_open(at(2026, 12, 25, 3))
    assert hours.next_opening(at(2026, 12, 25, 3)) is None
    assert hours.status(at(2026, 1, 1))["configured"] is False


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        (at(2026, 12, 1, 8, 0), True),  # Tue 09:00 in Berlin (CET, UTC+1)
        (at(2026, 12, 1, 7, 59), False),  # 08:59
        (at(2026, 12, 1, 16, 29), True),  # 17:29
        (at(2026, 12, 1, 16, 30), False),  # 17:30 is closed: ranges end exclusive
        (at(2026, 12, 5, 9, 0), True),  # Sat 10:00
        (at(2026, 12, 6, 11, 0), False),  # Sunday
    ],
)
def test_open_within_the_windows_in_the_business_zone(moment, is_open):
    assert BusinessHours(SHOP, BERLIN).is_open(moment) is is_open


def test_a_holiday_is_closed_all_day_and_the_next_opening_skips_it():
    hours = BusinessHours(SHOP, BERLIN, "2026-12-24, 2026-12-25")
    wednesday_evening = at(2026, 12, 23, 18)  # 19:00 in Berlin
    opening = hours.next_opening(wednesday_evening)
    assert not hours.is_open(at(2026, 12, 24, 10))
    assert opening.isoformat() == "2026-12-26T10:00:00+01:00"  # Saturday, after two holidays


def test_opening_hours_keep_their_wall_time_across_a_dst_change():
    hours = BusinessHours(SHOP, BERLIN)
    # Saturday 28 March 2026 after closing; clocks go forward on Sunday the 29th
    opening = hours.next_opening(at(2026, 3, 28, 15))
    assert opening.isoformat() == "2026-03-30T09:00:00+02:00"
    assert opening.astimezone(UTC) == at(2026, 3, 30, 7)  # an hour earlier in UTC than in winter
    assert hours.is_open(at(2026, 3, 30, 7)) and not hours.is_open(at(2026, 3, 30, 6, 59))
    # and back in autumn (25 October 2026)
    assert hours.next_opening(at(2026, 10, 24, 15)).astimezone(UTC) == at(2026, 10, 26, 8)


def test_a_window_may_end_at_midnight_and_days_may_wrap_the_week():
    hours = BusinessHours("Sat-Mon 20:00-24:00", "UTC")
    assert hours.is_open(at(2026, 12, 6, 23, 59))  # Sunday
    assert not hours.is_open(at(2026, 12, 8, 21))  # Tuesday


@pytest.mark.parametrize(
    ("text", "zone", "holidays", "says"),
    [
        ("Mon-Fry 09:00-17:00", "UTC", None, "not a day"),
        ("Mon-Fri 9-5", "UTC", None, "cannot read"),
        ("Mon 17:00-09:00", "UTC", None, "ends before"),
        ("Mon 09:00-12:00, 11:00-13:00", "UTC", None, "overlapping"),
        ("Mon 25:00-26:00", "UTC", None, "not a time"),
        (SHOP, "Mars/Olympus", None, "IANA"),
        (SHOP, "UTC", "2026-13-01", "HOLIDAYS"),
    ],
)
def test_bad_settings_say_what_is_wrong(text, zone, holidays, says):
    with pytest.raises(BusinessHoursError, match=says):
        BusinessHours(text, zone, holidays)


def test_the_next_opening_is_told_in_the_customers_terms():
    hours = BusinessHours(SHOP, BERLIN)
    friday_night = at(2026, 12, 4, 20)
    opening = hours.next_opening(friday_night)
    assert describe(opening, friday_night) == "tomorrow at 10:00 (Europe/Berlin time)"
    assert describe(opening, friday_night, "America/New_York") == (
        "tomorrow at 04:00 (America/New_York time)"
    )
    assert describe(opening, at(2026, 12, 2, 20), "Not/AZone").startswith("on Saturday 5 December")
    assert describe(opening, at(2026, 12, 5, 8)) == "today at 10:00 (Europe/Berlin time)"
