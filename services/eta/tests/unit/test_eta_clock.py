"""Calendar and working-day clocks: weekends and Brazilian holidays stand still."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from rastro_eta.domain.clock import CalendarClock, WorkingDayClock
from rastro_eta.settings import brazilian_holidays

pytestmark = pytest.mark.unit

BRT = timezone(timedelta(hours=-3))
CLOCK = WorkingDayClock.of(BRT, brazilian_holidays(2024, 2027))


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=BRT)


def test_the_holidays_package_gives_brazil_s_national_holidays() -> None:
    assert date(2025, 11, 20) in CLOCK.holidays  # Consciência Negra, national since 2024
    assert date(2025, 12, 25) in CLOCK.holidays
    assert not CLOCK.is_working(date(2025, 12, 25)) and not CLOCK.is_working(date(2025, 12, 27))
    assert CLOCK.is_working(date(2025, 12, 26))


def test_a_weekend_does_not_count_as_transit() -> None:
    friday, monday = date(2025, 3, 7), date(2025, 3, 10)
    assert CLOCK.position(at(monday)) - CLOCK.position(at(friday)) == pytest.approx(1.0)
    assert CLOCK.position(at(date(2025, 3, 8), 15)) == CLOCK.position(at(monday, 0))


def test_advancing_skips_weekends_and_holidays() -> None:
    wednesday = at(date(2025, 12, 24), 10)  # Christmas on Thursday
    arrival = CLOCK.instant(CLOCK.position(wednesday) + 1.0)
    assert arrival.date() == date(2025, 12, 26)
    assert CLOCK.local_date(CLOCK.instant(CLOCK.position(wednesday) + 2.0)) == date(2025, 12, 29)


@pytest.mark.parametrize("n", [0, 1, 4, 5, 17, 250, 2000])
def test_instant_inverts_position(n: int) -> None:
    start = at(date(2025, 1, 2), 9)
    moment = CLOCK.instant(CLOCK.position(start) + n + 0.25)
    assert CLOCK.is_working(moment.date())
    assert CLOCK.position(moment) == pytest.approx(CLOCK.position(start) + n + 0.25)


def test_the_calendar_clock_counts_every_day() -> None:
    clock = CalendarClock(BRT)
    friday = at(date(2025, 3, 7))
    assert clock.position(friday + timedelta(days=3)) - clock.position(friday) == pytest.approx(3.0)
    assert clock.instant(clock.position(friday)) == friday
