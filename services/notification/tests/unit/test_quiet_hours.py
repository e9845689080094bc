from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from rastro_notification.domain.quiet_hours import InvalidTimeZone, QuietHours, check_time_zone, defer_until

pytestmark = pytest.mark.unit
NIGHT = QuietHours(time(21), time(8), "America/Sao_Paulo")  # UTC-3, no DST since 2019


def utc(hour: int, minute: int = 0, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_outside_the_window_nothing_waits() -> None:
    assert defer_until(NIGHT, utc(15)) is None  # 12:00 local
    assert defer_until(None, utc(3)) is None


def test_late_evening_waits_until_the_next_morning() -> None:
    assert defer_until(NIGHT, utc(23, 30)) is None  # 20:30 local: not yet
    assert defer_until(NIGHT, utc(0, 30, day=24)) == utc(11, day=24)  # 21:30 local on the 23rd


def test_early_morning_waits_until_the_same_morning() -> None:
    assert defer_until(NIGHT, utc(9, day=24)) == utc(11, day=24)  # 06:00 local
    assert defer_until(NIGHT, utc(11, day=24)) is None  # 08:00 local: the window is over


def test_a_window_within_one_day_and_an_empty_one() -> None:
    lunch = QuietHours(time(12), time(14), "America/Sao_Paulo")
    assert defer_until(lunch, utc(16)) == utc(17)  # 13:00 local → 14:00 local
    assert defer_until(QuietHours(time(9), time(9), "UTC"), utc(9)) is None


def test_unknown_zones_are_refused() -> None:
    with pytest.raises(InvalidTimeZone):
        check_time_zone("Mars/Olympus")
    with pytest.raises(ValueError, match="aware"):
        defer_until(NIGHT, datetime(2026, 11, 23, 12))
