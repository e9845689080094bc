"""Predicting a delivery date from the lane statistics of a shipment's fallback chain.

The base time is the latest milestone the transit clock knows: pickup (``shipped_at``) once it
happened, else the shipment's creation. expected = base + P50 of the lane, promise = base + P90,
both as calendar dates in the service's time zone. The lane used is the finest one in the chain
with at least ``min_samples`` samples; if none has that many, the one with the most (the coarsest
with any); if no lane has a single sample, the configured default transit times, with sample size 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from rastro_eta.domain.lanes import LaneKey
from rastro_eta.domain.quantiles import LaneStats
from rastro_eta.domain.shipment import ShipmentFacts
from rastro_events import TERMINAL, EtaPredicted, Status

__all__ = [
    "MODEL_NAME",
    "ModelParameters",
    "Prediction",
    "choose_lane",
    "eta_event",
    "is_predictable",
    "predict",
    "prediction_changed",
]

MODEL_NAME = "lane-quantile-v1"
# A returning or expired shipment will not reach its recipient: there is no delivery date to predict.
_NOT_PREDICTED = TERMINAL | {Status.RETURNING, Status.EXPIRED}


@dataclass(frozen=True)
class ModelParameters:
    window: int = 200
    """Most recent samples per lane the quantiles are computed over."""
    min_samples: int = 5
    """A lane with fewer samples falls back to a coarser one."""
    default_expected_days: float = 7.0
    default_promise_days: float = 10.0
    zone: tzinfo | None = None
    """Where a date is a calendar day; None keeps each base time's own offset."""

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_samples < 1:
            raise ValueError("window and min_samples must be at least 1")
        if not 0 <= self.default_expected_days <= self.default_promise_days:
            raise ValueError("default transit days must satisfy 0 ≤ expected ≤ promise")

    @property
    def version(self) -> str:
        """Names the algorithm and the parameters that shape its numbers, for comparing predictions."""
        return f"{MODEL_NAME}.w{self.window}.m{self.min_samples}"


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

    @property
    def from_default(self) -> bool:
        return self.sample_size == 0


def is_predictable(status: Status) -> bool:
    return status not in _NOT_PREDICTED


def choose_lane(candidates: Sequence[LaneStats], min_samples: int) -> LaneStats | None:
    """``candidates`` in chain order (finest first), lanes without samples left out."""
    for stats in candidates:
        if stats.sample_size >= min_samples:
            return stats
    if not candidates:
        return None
    return max(candidates, key=lambda s: s.sample_size)  # first of equals: the finer lane


def predict(
    shipment: ShipmentFacts,
    candidates: Sequence[LaneStats],
    parameters: ModelParameters,
) -> Prediction:
    chosen = choose_lane(candidates, parameters.min_samples)
    if chosen is None:
        chosen = LaneStats(
            LaneKey.global_lane(), 0, parameters.default_expected_days, parameters.default_promise_days
        )
    started_at = shipment.started_at
    return Prediction(
        tracking_number=shipment.tracking_number,
        expected_date=_calendar_date(started_at + timedelta(days=chosen.p50_days), parameters.zone),
        promise_date=_calendar_date(started_at + timedelta(days=chosen.p90_days), parameters.zone),
        milestone=shipment.status,
        lane=chosen.key,
        sample_size=chosen.sample_size,
        model_version=parameters.version,
        started_at=started_at,
        expected_days=chosen.p50_days,
        promise_days=chosen.p90_days,
    )


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
    )


def _calendar_date(moment: datetime, zone: tzinfo | None) -> date:
    return (moment.astimezone(zone) if zone is not None else moment).date()
