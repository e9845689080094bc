"""Learning lane states and predicting from each milestone: fallback, dates, basis, one code path."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from rastro_eta.domain.clock import CalendarClock
from rastro_eta.domain.lane_state import LaneState, learn
from rastro_eta.domain.lanes import LaneAttributes, LaneKey, LaneLevel, lane_chain
from rastro_eta.domain.prediction import (
    ModelParameters,
    eta_event,
    is_predictable,
    predict,
    prediction_changed,
)
from rastro_eta.domain.shipment import ShipmentFacts
from rastro_eta.domain.transit import LaneSample, Segment
from rastro_events import Lane, Status

pytestmark = pytest.mark.unit

BRT = timezone(timedelta(hours=-3))
CREATED = datetime(2026, 3, 2, 9, 0, tzinfo=BRT)
ATTRS = LaneAttributes("correios", "sedex", "SP", "RJ")
PARAMS = ModelParameters(min_samples=5, half_life_days=None, clock=CalendarClock(BRT))


def shipment(
    status: Status = Status.INFO_RECEIVED, shipped_at: datetime | None = None, attrs: LaneAttributes = ATTRS
) -> ShipmentFacts:
    return ShipmentFacts(
        tracking_number="AA1", status=status, attributes=attrs, first_seen_at=CREATED,
        last_event_at=shipped_at or CREATED, created_at=CREATED, shipped_at=shipped_at,
    )  # fmt: skip


def teach(
    states: dict[LaneKey, LaneState], n: int, handling: float, transit: float, attrs: LaneAttributes = ATTRS
) -> None:
    for i in range(n):
        created = CREATED - timedelta(days=60 - i * 0.1)
        shipped = created + timedelta(days=handling)
        delivered = shipped + timedelta(days=transit)
        sample = LaneSample(f"L{i}", attrs, delivered, {Segment.CREATED: created, Segment.SHIPPED: shipped})
        learn(states, sample, PARAMS.clock, half_life_days=None, bin_days=0.25)


def test_learning_updates_every_lane_of_the_chain_once_per_delivery() -> None:
    states: dict[LaneKey, LaneState] = {}
    teach(states, 3, handling=1.0, transit=2.0)
    assert set(states) == set(lane_chain(ATTRS))
    assert {s.deliveries for s in states.values()} == {3}
    assert set(states[lane_chain(ATTRS)[0]].segments) == {Segment.CREATED, Segment.SHIPPED}


def test_from_purchase_the_whole_trip_counts_from_pickup_only_the_rest() -> None:
    states: dict[LaneKey, LaneState] = {}
    teach(states, 10, handling=2.0, transit=3.0)
    at_purchase = predict(shipment(), states, PARAMS)
    assert at_purchase.segment is Segment.CREATED
    assert at_purchase.expected_days == pytest.approx(5.0, abs=0.25)
    assert at_purchase.expected_date == date(2026, 3, 7)
    shipped = CREATED + timedelta(days=1)  # picked up faster than usual: the date moves earlier
    at_pickup = predict(shipment(Status.IN_TRANSIT, shipped), states, PARAMS)
    assert at_pickup.segment is Segment.SHIPPED
    assert at_pickup.expected_days == pytest.approx(3.0, abs=0.25)
    assert at_pickup.expected_date == date(2026, 3, 6)
    assert at_pickup.started_at == shipped


def test_a_thin_lane_falls_back_to_the_finest_lane_with_enough_weight() -> None:
    states: dict[LaneKey, LaneState] = {}
    teach(states, 3, 1.0, 2.0)
    other = LaneAttributes("correios", "pac", "SP", "RJ")
    teach(states, 4, 1.0, 6.0, attrs=other)  # carrier_route now has 7 samples, the sedex lane 3
    prediction = predict(shipment(), states, PARAMS)
    assert prediction.lane.level is LaneLevel.CARRIER_ROUTE
    assert (prediction.sample_size, prediction.confidence) == (7, "medium")


def test_without_samples_the_defaults_are_used_with_sample_size_zero() -> None:
    prediction = predict(shipment(), {}, PARAMS)
    assert prediction.from_default and prediction.confidence == "low"
    assert prediction.lane == LaneKey.global_lane()
    assert prediction.expected_date == date(2026, 3, 9)
    assert prediction.promise_date == date(2026, 3, 12)


def test_a_late_shipment_is_expected_today_at_the_earliest() -> None:
    states: dict[LaneKey, LaneState] = {}
    teach(states, 10, 0.5, 1.0)
    late = replace(shipment(Status.EXCEPTION), last_event_at=CREATED + timedelta(days=9))
    prediction = predict(late, states, PARAMS)
    assert prediction.expected_date == prediction.promise_date == date(2026, 3, 11)


def test_model_version_names_the_parameters() -> None:
    assert predict(shipment(), {}, PARAMS).model_version == "lane-decay-v2.cd.hinf.q0.9.m5"


def test_only_a_changed_date_is_worth_publishing() -> None:
    first = predict(shipment(), {}, PARAMS)
    assert prediction_changed(None, first)
    assert not prediction_changed(first, replace(first, sample_size=7, expected_days=7.01))
    assert prediction_changed(first, replace(first, promise_date=first.promise_date + timedelta(days=1)))


@pytest.mark.parametrize(
    ("status", "predictable"),
    [(Status.INFO_RECEIVED, True), (Status.OUT_FOR_DELIVERY, True), (Status.DELIVERED, False),
     (Status.RETURNING, False), (Status.CANCELLED, False), (Status.EXPIRED, False)],
)  # fmt: skip
def test_only_shipments_still_heading_to_the_recipient_are_predicted(
    status: Status, predictable: bool
) -> None:
    assert is_predictable(status) is predictable


def test_the_event_carries_dates_lane_basis_and_confidence() -> None:
    states: dict[LaneKey, LaneState] = {}
    teach(states, 30, 1.0, 2.0)
    prediction = predict(shipment(), states, PARAMS)
    event = eta_event(prediction, datetime(2026, 3, 3, tzinfo=UTC))
    assert event.lane == Lane(carrier="correios", service="sedex", origin="SP", destination="RJ")
    assert (event.confidence, event.lane_level, event.basis_milestone) == (
        "high",
        "carrier_service_route",
        "created",
    )
    assert (event.sample_size, event.promise_quantile) == (30, 0.9)


def test_lane_state_round_trips_through_json() -> None:
    states: dict[LaneKey, LaneState] = {}
    teach(states, 5, 1.0, 2.0)
    key = lane_chain(ATTRS)[0]
    assert LaneState.from_state(key, states[key].to_state()) == states[key]


def test_parameters_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        ModelParameters(min_samples=0)
    with pytest.raises(ValueError):
        ModelParameters(promise_quantile=0.4)
    with pytest.raises(ValueError):
        ModelParameters(default_expected_days=5, default_promise_days=4)
