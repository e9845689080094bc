"""Quiet hours: customer messages are not sent between ``start`` and ``end`` in the tenant's time zone;
one that falls due then is deferred to ``end`` (never dropped).

A window may cross midnight (21:00–08:00). ``start == end`` means no quiet hours. Local times that a
daylight-saving change skips or repeats are resolved by ``zoneinfo``'s ``fold=0`` rule; the answer is
always an aware UTC instant at or after ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["InvalidTimeZone", "QuietHours", "check_time_zone", "defer_until"]


class InvalidTimeZone(ValueError):
    """Not an IANA time zone name."""


def check_time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidTimeZone(f"{name!r} is not an IANA time zone such as 'America/Sao_Paulo'") from exc


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    time_zone: str

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # crosses midnight


def defer_until(quiet: QuietHours | None, now: datetime) -> datetime | None:
    """When a message due at ``now`` may go out: None if now is fine, else the end of the quiet window."""
    if quiet is None:
        return None
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = check_time_zone(quiet.time_zone)
    local = now.astimezone(zone)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return None
    end_day = local.date()
    if quiet.start > quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
        end_day += timedelta(days=1)  # evening part of a window that ends tomorrow morning
    end = datetime.combine(end_day, quiet.end, tzinfo=zone).astimezone(UTC)
    return max(end, now.astimezone(UTC))
