"""KPI windows and period buckets: which days a report covers and how ``group_by=period`` cuts them.

A window is a range of whole UTC days, ``from`` and ``to`` both included; without them it is the last
90 days up to today. A bucket is a whole calendar period named by its first day (``2026-11-02``, the
Monday of its week; ``2026-11-01`` for November), so the first and last buckets may be cut short by the
window. Windows are bounded (at most ``MAX_DAYS``) so a report reads a bounded slice of the table.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, NamedTuple, get_args

__all__ = [
    "DEFAULT_DAYS",
    "GROUPS",
    "MAX_DAYS",
    "PERIODS",
    "GroupBy",
    "KpiWindow",
    "Period",
    "WindowError",
    "period_start",
    "period_starts",
    "resolve_window",
]

GroupBy = Literal["tenant", "carrier", "service", "lane", "region", "channel", "period"]
Period = Literal["day", "week", "month"]
GROUPS: tuple[str, ...] = get_args(GroupBy)
PERIODS: tuple[str, ...] = get_args(Period)
DEFAULT_DAYS = 90
MAX_DAYS = 731  # two years: at most 731 day buckets, and a bounded slice of the cohort indexes


class WindowError(ValueError):
    """The asked window cannot be reported (answered 422)."""


class KpiWindow(NamedTuple):
    first: date
    last: date

    @property
    def start(self) -> datetime:
        """The first instant inside the window (UTC midnight of ``first``)."""
        return datetime.combine(self.first, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the window (UTC midnight after ``last``)."""
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)


def resolve_window(first: date | None, last: date | None, today: date) -> KpiWindow:
    """``from``/``to`` as asked; a missing ``to`` is today, a missing ``from`` 90 days up to ``to``."""
    last = last or (today if first is None else max(today, first))
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise WindowError(f"from ({first}) is after to ({last})")
    if (last - first).days + 1 > MAX_DAYS:
        raise WindowError(f"a window covers at most {MAX_DAYS} days; this one {(last - first).days + 1}")
    return KpiWindow(first, last)


def period_start(day: date, period: Period) -> date:
    """The first day of the bucket ``day`` falls in: itself, its week's Monday, its month's 1st."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_starts(window: KpiWindow, period: Period) -> list[date]:
    """Every bucket the window touches, in order (a chart's x axis, empty buckets included)."""
    starts: list[date] = []
    current = period_start(window.first, period)
    while current <= window.last:
        starts.append(current)
        if period == "day":
            current += timedelta(days=1)
        elif period == "week":
            current += timedelta(days=7)
        else:
            current = (current + timedelta(days=32)).replace(day=1)
    return starts
