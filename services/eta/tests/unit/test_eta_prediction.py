"""Choosing a lane from the fallback chain and turning its quantiles into dates."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from rastro_eta.domain.lanes import LaneAttributes, LaneKey, lane_chain
from rastro_eta.domain.prediction import (
    ModelParameters,
    choose_lane,
    eta_event,
    is_predictable,
    predict,
    prediction_changed,
)
from rastro_eta.domain.quantiles import LaneStats
from rastro_eta.domain.shipment import ShipmentFacts
from rastro_events import Lane, Status

pytestmark = pytest.mark.unit

BRT = timezone(timedelta(hours=-3))
CREATED = datetime(2026, 3, 2, 9, 0, tzinfo=BRT)
ATTRS = LaneAttributes("correios", "sedex", "SP", "RJ")
SERVICE_ROUTE, ROUTE, CARRIER, GLOBAL = lane_chain(ATTRS)
PARAMS = ModelParameters(
    window=100, min_samples=5, default_expected_days=7, default_promise_days=10, zone=BRT
)


def shipment(status: Status = Status.IN_TRANSIT, shipped_at: datetime | None = None) -> ShipmentFacts:
    return ShipmentFacts(
        tracking_number="AA1",
        status=status,
        attributes=ATTRS,
        first_seen_at=CREATED,
        last_event_at=shipped_at or CREATED,
        created_at=CREATED,
        shipped_at=shipped_at,
    )


def stats(key: LaneKey, n: int, p50: float = 2.0, p90: float = 4.0) -> LaneStats:
    return LaneStats(key, n, p50, p90)


def test_the_finest_lane_with_enough_samples_wins() -> None:
    candidates = [stats(SERVICE_ROUTE, 4), stats(ROUTE, 5), stats(CARRIER, 50)]
    assert choose_lane(candidates, min_samples=5) == candidates[1]


def test_when_every_lane_is_thin_the_one_with_most_samples_is_used() -> None:
    candidates = [stats(SERVICE_ROUTE, 1), stats(ROUTE, 3), stats(CARRIER, 3)]
    assert choose_lane(candidates, min_samples=5) == candidates[1]
    assert choose_lane([], min_samples=5) is None


def test_dates_are_the_base_time_plus_the_quantiles_in_the_service_zone() -> None:
    shipped = datetime(2026, 3, 3, 22, 0, tzinfo=UTC)  # 19:00 on the 3rd in BRT
    prediction = predict(shipment(shipped_at=shipped), [stats(SERVICE_ROUTE, 8, 2.1, 4.5)], PARAMS)
    assert prediction.started_at == shipped
    # 3rd 19:00 + 2.1 d = 5th 21:24 in BRT, already the 6th in UTC: the service zone decides
    assert prediction.expected_date == date(2026, 3, 5)
    assert prediction.promise_date == date(2026, 3, 8)  # 3rd 19:00 + 4.5 d = 8th 07:00 BRT
    assert (prediction.lane, prediction.sample_size) == (SERVICE_ROUTE, 8)
    assert prediction.milestone is Status.IN_TRANSIT
    assert (prediction.expected_days, prediction.promise_days) == (2.1, 4.5)


def test_before_pickup_the_clock_starts_at_creation() -> None:
    prediction = predict(shipment(Status.INFO_RECEIVED), [stats(CARRIER, 9, 1.0, 3.0)], PARAMS)
    assert prediction.started_at == CREATED
    assert prediction.expected_date == date(2026, 3, 3)
    assert prediction.promise_date == date(2026, 3, 5)


def test_without_samples_the_default_transit_times_are_used_with_sample_size_zero() -> None:
    prediction = predict(shipment(), [], PARAMS)
    assert prediction.from_default
    assert (prediction.sample_size, prediction.lane) == (0, GLOBAL)
    assert prediction.expected_date == date(2026, 3, 9)
    assert prediction.promise_date == date(2026, 3, 12)


def test_model_version_names_the_parameters() -> None:
    assert predict(shipment(), [], PARAMS).model_version == "lane-quantile-v1.w100.m5"


def test_only_a_changed_date_is_worth_publishing() -> None:
    first = predict(shipment(), [stats(ROUTE, 6)], PARAMS)
    assert prediction_changed(None, first)
    same_dates = replace(first, sample_size=7, milestone=Status.OUT_FOR_DELIVERY, expected_days=2.01)
    assert not prediction_changed(first, same_dates)
    assert prediction_changed(first, replace(first, promise_date=first.promise_date + timedelta(days=1)))
    assert prediction_changed(first, replace(first, expected_date=first.expected_date + timedelta(days=1)))


@pytest.mark.parametrize(
    ("status", "predictable"),
    [
        (Status.INFO_RECEIVED, True),
        (Status.IN_TRANSIT, True),
        (Status.EXCEPTION, True),
        (Status.FAILED_ATTEMPT, True),
        (Status.DELIVERED, False),
        (Status.RETURNING, False),
        (Status.RETURNED, False),
        (Status.CANCELLED, False),
        (Status.EXPIRED, False),
    ],
)
def test_only_shipments_still_heading_to_the_recipient_are_predicted(
    status: Status, predictable: bool
) -> None:
    assert is_predictable(status) is predictable


def test_the_event_carries_dates_lane_basis_and_milestone() -> None:
    prediction = predict(shipment(), [stats(ROUTE, 6)], PARAMS)
    at = datetime(2026, 3, 3, tzinfo=UTC)
    event = eta_event(prediction, at)
    assert event.lane == Lane(carrier="correios", origin="SP", destination="RJ")
    assert (event.expected_date, event.promise_date) == (prediction.expected_date, prediction.promise_date)
    assert (event.sample_size, event.model_version, event.milestone) == (
        6,
        prediction.model_version,
        Status.IN_TRANSIT,
    )
    assert event.predicted_at == at
    assert event.shipment_key() == "AA1"


def test_parameters_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        ModelParameters(window=0)
    with pytest.raises(ValueError):
        ModelParameters(default_expected_days=5, default_promise_days=4)
