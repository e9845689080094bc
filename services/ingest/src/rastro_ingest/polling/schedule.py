"""When to poll a shipment next. Pure: no I/O.

- in transit: every ``interval`` (default hourly);
- delivered: every ``delivered_interval`` (default daily) for ``delivered_days`` days, then stopped;
- no news (no new carrier event) for ``expire_after_days`` (default 30): expired, never polled again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

__all__ = ["PollPolicy", "PollState", "next_poll"]

PollState = Literal["in_transit", "delivered", "stopped", "expired"]


@dataclass(frozen=True)
class PollPolicy:
    interval: timedelta = timedelta(hours=1)
    delivered_interval: timedelta = timedelta(days=1)
    delivered_days: int = 3
    expire_after_days: int = 30


def next_poll(
    policy: PollPolicy,
    *,
    now: datetime,
    delivered_at: datetime | None,
    last_news_at: datetime,
) -> tuple[PollState, datetime | None]:
    """The shipment's polling state after a poll at ``now``, and when to poll it next (None: never)."""
    if delivered_at is not None:
        stop_at = delivered_at + timedelta(days=policy.delivered_days)
        if now >= stop_at:
            return "stopped", None
        return "delivered", min(now + policy.delivered_interval, stop_at)
    if now - last_news_at >= timedelta(days=policy.expire_after_days):
        return "expired", None
    return "in_transit", now + policy.interval
