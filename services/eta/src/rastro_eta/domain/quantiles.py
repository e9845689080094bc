"""Exact quantiles of a lane's recent transit times.

We use the nearest-rank definition (the one Postgres calls ``percentile_disc``): the q-quantile is the
smallest sample with at least a fraction q of the samples at or below it. For the promise (P90) that
is the property we sell: at least 90 % of the lane's recent deliveries arrived within it. It never
interpolates, so every quantile is a transit time that really happened.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from rastro_eta.domain.lanes import LaneKey

__all__ = ["EXPECTED_QUANTILE", "PROMISE_QUANTILE", "LaneStats", "lane_stats", "nearest_rank"]

EXPECTED_QUANTILE = 0.5
PROMISE_QUANTILE = 0.9


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The q-quantile of ``values`` (0 < q ≤ 1) by nearest rank."""
    if not values:
        raise ValueError("the quantile of no values is undefined")
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    ordered = sorted(values)
    # q as the decimal it was written as: 0.9 * 10 must be rank 9, not 9.000000000000002 → 10.
    rank = math.ceil(Fraction(q).limit_denominator(1_000_000) * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class LaneStats:
    """What one lane's recent deliveries say: P50 (expected) and P90 (promise) transit days."""

    key: LaneKey
    sample_size: int
    p50_days: float
    p90_days: float


def lane_stats(key: LaneKey, transit_days: Sequence[float]) -> LaneStats | None:
    """Statistics of a lane from its samples (already limited to the window); None without samples."""
    if not transit_days:
        return None
    return LaneStats(
        key=key,
        sample_size=len(transit_days),
        p50_days=nearest_rank(transit_days, EXPECTED_QUANTILE),
        p90_days=nearest_rank(transit_days, PROMISE_QUANTILE),
    )
