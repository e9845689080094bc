"""Streaming, time-decayed quantiles of transit times: a weighted histogram that fits in a JSON column.

Each sample adds a weight to the bin of its value (``bin_days`` wide). Weights decay with the age of
the sample, halving every ``half_life_days``: a lane that slows down moves its quantiles within days
when it has traffic. We use *forward decay*: a sample at time t (days) weighs 2^((t − landmark)/h)
relative to a fixed landmark, so adding one is O(1), the result does not depend on the order samples
arrive in (a late or replayed delivery lands exactly where it would have), and the quantiles at any
moment are those of every sample weighted by 2^(−age/h). The landmark moves forward now and then
only to keep the numbers in floating-point range; that rescales every weight by the same factor.

Quantiles interpolate linearly inside a bin, so they are exact to within half a bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DecayedQuantiles", "nearest_rank"]

_RESCALE_EXPONENT = 400.0  # 2^400 is far from the float limit (2^1024) and from losing small weights


def nearest_rank(values: list[float], q: float) -> float:
    """The exact q-quantile of ``values`` by nearest rank (a reference for tests and small lanes)."""
    if not values:
        raise ValueError("the quantile of no values is undefined")
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    ordered = sorted(values)
    found: float = ordered[max(math.ceil(round(q * len(ordered), 9)), 1) - 1]
    return found


@dataclass
class DecayedQuantiles:
    bin_days: float = 0.25
    max_days: float = 180.0
    min_days: float = 0.0
    """The lowest value kept apart (below it, the first bin); negative for offsets from a date."""
    half_life_days: float | None = 30.0
    """None: no decay (every sample weighs 1 forever)."""
    landmark: float = 0.0
    count: int = 0
    """Samples added, undecayed."""
    newest: float | None = None
    """Time (days since the epoch) of the newest sample."""
    weights: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.bin_days <= 0 or self.max_days - self.min_days <= self.bin_days:
            raise ValueError("need 0 < bin_days < max_days - min_days")
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise ValueError("half_life_days must be positive (or None for no decay)")

    def _exponent(self, at: float) -> float:
        return 0.0 if self.half_life_days is None else (at - self.landmark) / self.half_life_days

    def add(self, value: float, at: float) -> None:
        """Learn ``value`` (days) observed at time ``at`` (days since the epoch)."""
        if math.isnan(value) or (value < self.min_days - 1e-9 and self.min_days == 0):
            raise ValueError(f"transit time must be a non-negative number, got {value}")
        if self.count == 0:
            self.landmark = at
        exponent = self._exponent(at)
        if exponent > _RESCALE_EXPONENT:
            self._move_landmark(at)
            exponent = 0.0
        bins = int((self.max_days - self.min_days) / self.bin_days)
        index = min(max(int((value - self.min_days) / self.bin_days), 0), bins - 1)
        self.weights[index] = self.weights.get(index, 0.0) + 2.0**exponent
        self.count += 1
        self.newest = at if self.newest is None else max(self.newest, at)

    def _move_landmark(self, at: float) -> None:
        factor = 2.0 ** -self._exponent(at)
        self.weights = {i: w * factor for i, w in self.weights.items() if w * factor > 1e-300}
        self.landmark = at

    @property
    def total(self) -> float:
        return sum(self.weights.values())

    def weight_at(self, at: float) -> float:
        """The decayed weight of every sample as seen at time ``at``: an effective sample size."""
        if self.count == 0:
            return 0.0
        decayed: float = self.total * 2.0 ** -self._exponent(at)
        return min(float(self.count), decayed)

    def quantile(self, q: float) -> float | None:
        """The decayed q-quantile in days (None without samples): the weighted share q of the samples
        is at or below it."""
        if not 0 < q < 1:
            raise ValueError(f"q must be in (0, 1), got {q}")
        if not self.weights:
            return None
        items = sorted(self.weights.items())
        target = q * sum(w for _, w in items)
        cumulative = 0.0
        for index, weight in items:
            if cumulative + weight >= target:
                inside = (target - cumulative) / weight if weight > 0 else 0.0
                return self.min_days + (index + inside) * self.bin_days
            cumulative += weight
        return self.min_days + (items[-1][0] + 1) * self.bin_days

    def quantiles(self, qs: tuple[float, ...]) -> tuple[float, ...] | None:
        """Several quantiles in one pass (``qs`` ascending)."""
        if not self.weights:
            return None
        items = sorted(self.weights.items())
        total = sum(w for _, w in items)
        found: list[float] = []
        cumulative, i = 0.0, 0
        for q in qs:
            target = q * total
            while i < len(items) - 1 and cumulative + items[i][1] < target:
                cumulative += items[i][1]
                i += 1
            index, weight = items[i]
            inside = min(1.0, (target - cumulative) / weight) if weight > 0 else 0.0
            found.append(self.min_days + (index + inside) * self.bin_days)
        return tuple(found)

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready snapshot; ``from_state`` gives back an equal estimator."""
        return {
            "bin_days": self.bin_days,
            "max_days": self.max_days,
            "min_days": self.min_days,
            "half_life_days": self.half_life_days,
            "landmark": self.landmark,
            "count": self.count,
            "newest": self.newest,
            "weights": {str(i): w for i, w in sorted(self.weights.items())},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DecayedQuantiles:
        return cls(
            bin_days=float(state["bin_days"]),
            max_days=float(state["max_days"]),
            min_days=float(state.get("min_days", 0.0)),
            half_life_days=None if state["half_life_days"] is None else float(state["half_life_days"]),
            landmark=float(state["landmark"]),
            count=int(state["count"]),
            newest=None if state["newest"] is None else float(state["newest"]),
            weights={int(i): float(w) for i, w in state["weights"].items()},
        )
