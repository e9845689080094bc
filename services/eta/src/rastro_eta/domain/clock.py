"""Clocks that measure transit time: calendar days, or working days (weekends and holidays skipped).

A clock maps an instant to a continuous *position* in days; transit = position(delivered) −
position(started), and a prediction is the instant whose position is position(started) + transit.
On the working-day clock the position advances only during working days (Monday–Friday that are not
holidays, in the clock's zone) and stands still over weekends and holidays, so a predicted date never
falls on one and a weekend in the middle of a trip is not counted as transit. The holiday set is data
given by the caller (the settings build it from the ``holidays`` package): this module does no I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

__all__ = ["CalendarClock", "Clock", "WorkingDayClock"]

_DAY = 86_400.0
_EPOCH = date(1970, 1, 5)  # a Monday: weeks counted from here line up with weekday()
_CACHE_SIZE = 100_000  # working day by index: a few decades of days


@dataclass(frozen=True)
class CalendarClock:
    """Every day counts, as in the instant's own offset or in ``zone``."""

    zone: tzinfo | None = None
    name: str = "cd"

    def position(self, moment: datetime) -> float:
        return moment.timestamp() / _DAY

    def instant(self, position: float) -> datetime:
        moment = datetime.fromtimestamp(position * _DAY, UTC)
        return moment.astimezone(self.zone) if self.zone is not None else moment

    def local_date(self, moment: datetime) -> date:
        return (moment.astimezone(self.zone) if self.zone is not None else moment).date()


@dataclass(frozen=True)
class WorkingDayClock:
    """Only working days count: Monday to Friday, minus ``holidays``, as calendar days in ``zone``."""

    zone: tzinfo
    holidays: frozenset[date] = frozenset()
    name: str = "wd"
    _working_holidays: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _cache: dict[int, date] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordinals = sorted({d.toordinal() for d in self.holidays if d.weekday() < 5})
        object.__setattr__(self, "_working_holidays", tuple(ordinals))
        object.__setattr__(self, "_cache", {})

    @classmethod
    def of(cls, zone: tzinfo, holidays: Iterable[date]) -> WorkingDayClock:
        return cls(zone=zone, holidays=frozenset(holidays))

    def is_working(self, day: date) -> bool:
        if day.weekday() >= 5:
            return False
        i = bisect.bisect_left(self._working_holidays, day.toordinal())
        return not (i < len(self._working_holidays) and self._working_holidays[i] == day.toordinal())

    def working_days_before(self, day: date) -> int:
        """Working days from the clock's epoch up to, not including, ``day``."""
        offset = day.toordinal() - _EPOCH.toordinal()
        weeks, rest = divmod(offset, 7)
        weekdays = weeks * 5 + min(rest, 5)
        holidays = bisect.bisect_left(self._working_holidays, day.toordinal()) - bisect.bisect_left(
            self._working_holidays, _EPOCH.toordinal()
        )
        return weekdays - holidays

    def position(self, moment: datetime) -> float:
        local = moment.astimezone(self.zone)
        day = local.date()
        before = float(self.working_days_before(day))
        if not self.is_working(day):
            return before
        since_midnight = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return before + since_midnight / _DAY

    def instant(self, position: float) -> datetime:
        """The instant at ``position``: on the working day it falls in (ends of days belong to them)."""
        whole = int(position // 1)
        fraction = position - whole
        day = self._nth_working_day(whole)
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        return midnight + timedelta(seconds=fraction * _DAY)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def _nth_working_day(self, n: int) -> date:
        """The working day with ``n`` working days before it."""
        found = self._cache.get(n)
        if found is not None:
            return found
        # Step forward by the five-day week; holidays leave a deficit, made up by further steps (a
        # step of k weekdays adds at most k working days, so it never overshoots).
        day = _EPOCH
        while (deficit := n - self.working_days_before(day)) > 0:
            weeks, rest = divmod(deficit, 5)
            day += timedelta(days=weeks * 7 + rest)
        while not self.is_working(day):  # days off add nothing: the count stays n
            day += timedelta(days=1)
        if len(self._cache) < _CACHE_SIZE:
            self._cache[n] = day
        return day


Clock = CalendarClock | WorkingDayClock
