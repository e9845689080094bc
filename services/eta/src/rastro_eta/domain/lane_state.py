"""The learned state of one lane: a decayed quantile estimator per segment, serializable to JSON.

The service keeps one row per lane in Postgres with this state; the offline evaluator keeps the same
objects in a dict. Both learn through ``learn`` and predict through ``prediction.predict``: one code
path, so a live prediction equals what the evaluation computes for the same history.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from rastro_eta.domain.clock import Clock
from rastro_eta.domain.lanes import LaneKey, lane_chain
from rastro_eta.domain.quantiles import DecayedQuantiles
from rastro_eta.domain.transit import SECONDS_PER_DAY, LaneSample, Segment

__all__ = ["STATE_VERSION", "LaneState", "learn"]

STATE_VERSION = 1


@dataclass
class LaneState:
    key: LaneKey
    segments: dict[Segment, DecayedQuantiles] = field(default_factory=dict)
    deliveries: int = 0

    def segment(self, segment: Segment) -> DecayedQuantiles | None:
        return self.segments.get(segment)

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "deliveries": self.deliveries,
            "segments": {s.value: q.to_state() for s, q in sorted(self.segments.items())},
        }

    @classmethod
    def from_state(cls, key: LaneKey, state: dict[str, Any]) -> LaneState:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown lane state version {state.get('version')!r}")
        return cls(
            key=key,
            segments={Segment(s): DecayedQuantiles.from_state(q) for s, q in state["segments"].items()},
            deliveries=int(state["deliveries"]),
        )


def learn(
    states: MutableMapping[LaneKey, LaneState],
    sample: LaneSample,
    clock: Clock,
    *,
    half_life_days: float | None,
    bin_days: float,
) -> list[LaneKey]:
    """Teach ``sample`` to every lane of its chain (creating missing lanes in ``states``); returns the
    lanes changed. Transit times are measured on ``clock``; the decay runs on delivery time."""
    at = sample.delivered_at.timestamp() / SECONDS_PER_DAY  # decay runs on real time, in days
    delivered = clock.position(sample.delivered_at)
    durations = {s: max(0.0, delivered - clock.position(start)) for s, start in sample.starts.items()}
    changed = []
    for key in lane_chain(sample.attributes):
        state = states.get(key)
        if state is None:
            state = states[key] = LaneState(key)
        for segment, days in durations.items():
            estimator = state.segments.get(segment)
            if estimator is None:
                estimator = state.segments[segment] = DecayedQuantiles(
                    bin_days=bin_days,
                    half_life_days=half_life_days,
                )
            estimator.add(days, at)
        state.deliveries += 1
        changed.append(key)
    return changed
