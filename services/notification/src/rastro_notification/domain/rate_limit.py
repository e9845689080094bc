"""A per-endpoint rate limit as a GCRA (generic cell rate algorithm): one timestamp per subscription.

``tat`` (theoretical arrival time) is when the next send would be exactly on the limit's pace. A send
is allowed while ``tat`` is at most ``burst / rate`` seconds ahead of now, so an idle endpoint may take
a burst of ``burst`` messages (one second's worth, at least one), then ``rate`` per second. Each send
moves ``tat`` on by ``1 / rate``. The state is one timestamp, kept in the subscription row and updated
in the claim's transaction, so the limit holds across every instance.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

__all__ = ["MIN_RATE_PER_S", "allowance", "burst_for", "next_tat"]

# The slowest limit: one send per 1,000 s. The API refuses less; here it also guards rows stored before,
# since 1 / 5e-324 is infinite and one such row would stop every endpoint's deliveries.
MIN_RATE_PER_S = 0.001


def burst_for(rate_per_s: float) -> int:
    return max(1, math.floor(rate_per_s))


def allowance(tat: datetime | None, now: datetime, rate_per_s: float) -> int:
    """How many sends may start at ``now``."""
    rate_per_s = max(rate_per_s, MIN_RATE_PER_S)
    start = now if tat is None or tat < now else tat
    headroom_s = (now - start).total_seconds() + burst_for(rate_per_s) / rate_per_s
    return max(0, math.floor(headroom_s * rate_per_s + 1e-9))


def next_tat(tat: datetime | None, now: datetime, rate_per_s: float, sent: int) -> datetime:
    rate_per_s = max(rate_per_s, MIN_RATE_PER_S)
    start = now if tat is None or tat < now else tat
    return start + timedelta(seconds=sent / rate_per_s)
