"""Predicting a delivery date from the lane states of a shipment's fallback chain.

The base is the latest milestone the shipment passed (``transit.milestone_of``): out for delivery,
else carrier pickup, else creation. Each milestone has its own learned segment, so a prediction from
pickup uses how long deliveries took *from pickup* and is sharper than one from the order. With q50
and q_promise the decayed quantiles of that segment on the chosen lane:

    expected = clock.instant(clock.position(base) + q50)        (P50: what we believe)
    promise  = clock.instant(clock.position(base) + q_promise)  (P90 or the calibrated quantile)

both as calendar dates in the clock's zone, and never before the day of the event being handled (a
shipment already late for its lane is expected today at the earliest). The lane used is the finest in
the chain whose segment has an effective (decayed) weight of at least ``min_samples``; if none has,
the one with the most weight; if no lane has a sample of that segment, the configured defaults
(sample size 0). "Now" is the time of the latest event of the shipment, never the wall clock, so a
replay of the same history gives the same prediction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

from rastro_eta.domain.clock import CalendarClock, Clock
from rastro_eta.domain.lane_state import LaneState
from rastro_eta.domain.lanes import LaneKey, lane_chain
from rastro_eta.domain.quantiles import DecayedQuantiles
from rastro_eta.domain.shipment import ShipmentFacts
from rastro_eta.domain.transit import SECONDS_PER_DAY, Segment, milestone_of
from rastro_events import TERMINAL, EtaPredicted, Status

__all__ = [
    "MODEL_NAME",
    "Confidence",
    "ModelParameters",
    "Prediction",
    "eta_event",
    "is_predictable",
    "predict",
    "prediction_changed",
    "promise_ladder",
]

MODEL_NAME = "lane-decay-v2"
# A returning or expired shipment will not reach its recipient: there is no delivery date to predict.
_NOT_PREDICTED = TERMINAL | {Status.RETURNING, Status.EXPIRED}
# Out for delivery and never learned: today or tomorrow.
_OUT_FOR_DELIVERY_DEFAULTS = (0.5, 1.5)
Confidence = Literal["high", "medium", "low"]


@dataclass(frozen=True)
class ModelParameters:
    min_samples: float = 5.0
    """A lane whose decayed weight is below this falls back to a coarser one."""
    half_life_days: float | None = 30.0
    """A sample's weight halves every this many days (None: no decay)."""
    promise_quantile: float = 0.9
    expected_quantile: float = 0.5
    bin_days: float = 0.25
    default_expected_days: float = 7.0
    default_promise_days: float = 10.0
    clock: Clock = field(default_factory=CalendarClock)

    def __post_init__(self) -> None:
        if self.min_samples < 1:
            raise ValueError("min_samples must be at least 1")
        if not 0 < self.expected_quantile <= self.promise_quantile < 1:
            raise ValueError("quantiles must satisfy 0 < expected ≤ promise < 1")
        if not 0 <= self.default_expected_days <= self.default_promise_days:
            raise ValueError("default transit days must satisfy 0 ≤ expected ≤ promise")

    @property
    def version(self) -> str:
        """Names the algorithm and the parameters that shape its numbers, for comparing predictions."""
        half_life = "inf" if self.half_life_days is None else f"{self.half_life_days:g}"
        return f"{MODEL_NAME}.{self.clock.name}.h{half_life}.q{self.promise_quantile:g}.m{self.min_samples:g}"


@dataclass(frozen=True)
class Prediction:
    tracking_number: str
    expected_date: date
    promise_date: date
    milestone: Status
    lane: LaneKey
    sample_size: int
    model_version: str
    started_at: datetime
    expected_days: float
    promise_days: float
    segment: Segment = Segment.CREATED
    weight: float = 0.0
    """Effective (decayed) sample size of the segment on the lane used."""
    confidence: Confidence = "low"
    promise_quantile: float = 0.9

    @property
    def from_default(self) -> bool:
        return self.sample_size == 0


def is_predictable(status: Status) -> bool:
    return status not in _NOT_PREDICTED


def _choose(
    chain: tuple[LaneKey, ...],
    states: Mapping[LaneKey, LaneState],
    segment: Segment,
    now: float,
    needed: float,
) -> tuple[LaneKey, DecayedQuantiles, float] | None:
    best: tuple[LaneKey, DecayedQuantiles, float] | None = None
    for key in chain:
        state = states.get(key)
        estimator = state.segment(segment) if state is not None else None
        if estimator is None or estimator.count == 0:
            continue
        weight = estimator.weight_at(now)
        if weight >= needed:
            return key, estimator, weight
        if best is None or weight > best[2]:
            best = (key, estimator, weight)
    return best


def _confidence(weight: float, min_samples: float) -> Confidence:
    if weight >= 4 * min_samples:
        return "high"
    return "medium" if weight >= min_samples else "low"


def _basis(
    shipment: ShipmentFacts, states: Mapping[LaneKey, LaneState], parameters: ModelParameters
) -> tuple[Segment, datetime, tuple[LaneKey, DecayedQuantiles, float] | None]:
    """The milestone the prediction starts from, and the lane (with its estimator and weight) used."""
    segment, base = milestone_of(shipment)
    now = shipment.last_event_at.timestamp() / SECONDS_PER_DAY
    chosen = _choose(lane_chain(shipment.attributes), states, segment, now, parameters.min_samples)
    return segment, base, chosen


def predict(
    shipment: ShipmentFacts, states: Mapping[LaneKey, LaneState], parameters: ModelParameters
) -> Prediction:
    """The prediction for ``shipment`` given the states of (at least) the lanes of its chain."""
    segment, base, chosen = _basis(shipment, states, parameters)
    now = shipment.last_event_at
    if chosen is None:
        lane, count, weight = LaneKey.global_lane(), 0, 0.0
        expected_days, promise_days = (
            _OUT_FOR_DELIVERY_DEFAULTS
            if segment is Segment.OUT_FOR_DELIVERY
            else (parameters.default_expected_days, parameters.default_promise_days)
        )
    else:
        lane, estimator, weight = chosen
        count = estimator.count
        expected_days = estimator.quantile(parameters.expected_quantile) or 0.0
        promise_days = max(expected_days, estimator.quantile(parameters.promise_quantile) or 0.0)
    clock = parameters.clock
    start = clock.position(base)
    today = clock.local_date(now)
    return Prediction(
        tracking_number=shipment.tracking_number,
        expected_date=max(today, clock.local_date(clock.instant(start + expected_days))),
        promise_date=max(today, clock.local_date(clock.instant(start + promise_days))),
        milestone=shipment.status,
        lane=lane,
        sample_size=count,
        model_version=parameters.version,
        started_at=base,
        expected_days=expected_days,
        promise_days=promise_days,
        segment=segment,
        weight=weight,
        confidence="low" if count == 0 else _confidence(weight, parameters.min_samples),
        promise_quantile=parameters.promise_quantile,
    )


def promise_ladder(
    shipment: ShipmentFacts,
    states: Mapping[LaneKey, LaneState],
    parameters: ModelParameters,
    levels: tuple[float, ...],
) -> tuple[date, ...]:
    """The promise dates ``predict`` would give at each quantile of ``levels`` (for calibration)."""
    _, base, chosen = _basis(shipment, states, parameters)
    clock = parameters.clock
    today = clock.local_date(shipment.last_event_at)
    if chosen is None:
        return tuple(
            predict(shipment, states, replace(parameters, promise_quantile=q)).promise_date for q in levels
        )
    values = chosen[1].quantiles((parameters.expected_quantile, *levels)) or ()
    start = clock.position(base)
    return tuple(max(today, clock.local_date(clock.instant(start + max(values[0], v)))) for v in values[1:])


def prediction_changed(previous: Prediction | None, current: Prediction) -> bool:
    """Worth publishing: the first prediction, or a different expected or promise date."""
    if previous is None:
        return True
    return (previous.expected_date, previous.promise_date) != (current.expected_date, current.promise_date)


def eta_event(prediction: Prediction, predicted_at: datetime) -> EtaPredicted:
    return EtaPredicted(
        tracking_number=prediction.tracking_number,
        expected_date=prediction.expected_date,
        promise_date=prediction.promise_date,
        lane=prediction.lane.to_lane(),
        model_version=prediction.model_version,
        sample_size=prediction.sample_size,
        predicted_at=predicted_at,
        milestone=prediction.milestone,
        confidence=prediction.confidence,
        lane_level=prediction.lane.level.value,
        basis_milestone=prediction.segment.value,
        promise_quantile=prediction.promise_quantile,
    )
