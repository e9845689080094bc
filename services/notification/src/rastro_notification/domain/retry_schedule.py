"""When to try a webhook delivery again (DESIGN §7).

After the first attempt the default schedule waits 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight
attempts over about 28 hours — then gives up. ``RASTRO_NOTIFICATION_RETRY_SCHEDULE`` (comma-separated
seconds) replaces it, e.g. ``"1,2,5"`` for tests and demos.

Every delay gets ±20 % jitter so that messages failing together do not come back together.

``Retry-After`` policy: the header is a lower bound set by the receiver, so it is honoured when it asks
for *more* time than our schedule, never used to come back *sooner* (a server answering ``Retry-After:
0`` to every request would otherwise turn back-off into a hot loop). Its value is clamped to
[1 s, 24 h] so that a broken or hostile header cannot park a message for years, and jittered upwards
only (up to +20 %, still capped at 24 h) so we never arrive before the time the receiver named. It
never extends the number of attempts: when the schedule is exhausted the answer is still "give up".
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = [
    "DEFAULT_DELAYS_S",
    "JITTER",
    "RETRY_AFTER_MAX_S",
    "RETRY_AFTER_MIN_S",
    "RetrySchedule",
    "parse_retry_after",
]

DEFAULT_DELAYS_S: tuple[float, ...] = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
JITTER = 0.2
RETRY_AFTER_MIN_S = 1.0
RETRY_AFTER_MAX_S = 24 * 3600.0

_DELTA_SECONDS = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True)
class RetrySchedule:
    """Delays (seconds) before retry 1, 2, …; ``len(delays_s) + 1`` attempts in all."""

    delays_s: tuple[float, ...]
    jitter: float = JITTER

    def __post_init__(self) -> None:
        if any(not math.isfinite(d) or d < 0 for d in self.delays_s):
            raise ValueError("retry delays are finite, non-negative numbers of seconds")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")

    @classmethod
    def default(cls) -> RetrySchedule:
        return cls(DEFAULT_DELAYS_S)

    @classmethod
    def parse(cls, text: str) -> RetrySchedule:
        """Read the setting's form: comma-separated seconds, e.g. ``"5,300,1800"``."""
        items = [item.strip() for item in text.split(",")]
        if not all(_DELTA_SECONDS.fullmatch(item) for item in items):
            raise ValueError(f"retry schedule must be comma-separated seconds, got {text!r}")
        return cls(tuple(float(item) for item in items))

    @property
    def max_attempts(self) -> int:
        return len(self.delays_s) + 1

    def next_delay(
        self, attempt_number: int, rng: random.Random, retry_after: float | None = None
    ) -> float | None:
        """Seconds to wait after attempt ``attempt_number`` (1 = the first) failed; None = give up."""
        if attempt_number < 1:
            raise ValueError("attempts are numbered from 1")
        if attempt_number > len(self.delays_s):
            return None
        scheduled = self.delays_s[attempt_number - 1]
        delay = rng.uniform(scheduled * (1 - self.jitter), scheduled * (1 + self.jitter))
        if retry_after is not None and not math.isnan(retry_after):
            asked = min(max(retry_after, RETRY_AFTER_MIN_S), RETRY_AFTER_MAX_S)
            asked = min(rng.uniform(asked, asked * (1 + self.jitter)), RETRY_AFTER_MAX_S)
            delay = max(delay, asked)
        return delay


def parse_retry_after(value: str, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP-date); None when unreadable.

    A date in the past means "now" (0.0). ``now`` must be timezone-aware.
    """
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
