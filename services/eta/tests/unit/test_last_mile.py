"""The last-mile estimate: distance and speed to minutes, clamps, inside the destination, the promise,
confidence, the republish throttle and the event it becomes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from rastro_eta.domain.clock import CalendarClock
from rastro_eta.domain.lanes import LaneAttributes
from rastro_eta.domain.last_mile import (
    LastMileParameters,
    confidence_of,
    estimate_last_mile,
    last_mile_event,
    refines,
    worth_publishing,
)
from rastro_eta.domain.shipment import ShipmentFacts
from rastro_events import Lane, ShipmentPosition, Status

pytestmark = pytest.mark.unit

BRT = timezone(timedelta(hours=-3))
AT = datetime(2026, 3, 2, 14, 0, tzinfo=BRT)
P = LastMileParameters()  # detour 1.3, 8–80 km/h, 5 min handling, promise × 1.5, republish 2 min


def position(**fields: Any) -> ShipmentPosition:
    values: dict[str, Any] = {
        "tracking_number": "FLEET1",
        "vehicle_id": "VAN-7",
        "recorded_at": AT,
        "latitude": -22.9,
        "longitude": -43.1,
        "speed_kmh": 30.0,
        "route_remaining_m": 10_000,
    }
    return ShipmentPosition(**(values | fields))


def minutes(**fields: Any) -> float:
    estimate = estimate_last_mile(position(**fields), P)
    assert estimate is not None
    return estimate.minutes


def test_route_distance_at_the_recent_speed_plus_handling() -> None:
    estimate = estimate_last_mile(position(), P)
    assert estimate is not None
    assert estimate.minutes == pytest.approx(10 / 30 * 60 + 5)  # 20 min driving + 5 at the door
    assert estimate.expected_at == AT + timedelta(minutes=25)
    assert estimate.expected_at.tzinfo is UTC and estimate.position_at == AT
    assert estimate.promise_at == AT + timedelta(minutes=25 * 1.5)
    assert (estimate.remaining_m, estimate.distance_source, estimate.speed_clamped) == (
        10_000,
        "route",
        False,
    )


def test_the_estimate_drops_with_the_remaining_distance() -> None:
    left = [minutes(route_remaining_m=m) for m in (20_000, 10_000, 5_000, 1_000, 0)]
    assert left == sorted(left, reverse=True) and len(set(left)) == len(left)
    assert left[-1] == pytest.approx(P.handling_minutes)


def test_without_a_route_the_straight_line_is_stretched_by_the_detour_factor() -> None:
    estimate = estimate_last_mile(position(route_remaining_m=None, remaining_m=10_000), P)
    assert estimate is not None
    assert (estimate.remaining_m, estimate.distance_source) == (13_000, "straight_line")
    assert estimate.minutes == pytest.approx(13 / 30 * 60 + 5)
    # the planned route, when there is one, wins over the straight line
    assert minutes(route_remaining_m=10_000, remaining_m=2_000) == pytest.approx(25)


def test_a_parked_vehicle_is_clamped_to_the_floor_and_a_highway_burst_to_the_ceiling() -> None:
    parked = estimate_last_mile(position(speed_kmh=0.0), P)
    assert parked is not None and parked.speed_clamped
    assert parked.speed_kmh == 8.0 and parked.minutes == pytest.approx(10 / 8 * 60 + 5)
    burst = estimate_last_mile(position(speed_kmh=140.0, route_remaining_m=50_000), P)
    assert burst is not None and burst.speed_clamped
    assert burst.speed_kmh == 80.0 and burst.minutes == pytest.approx(50 / 80 * 60 + 5)


def test_inside_the_destination_only_the_handling_time_is_left() -> None:
    estimate = estimate_last_mile(position(inside_destination=True, speed_kmh=0.0), P)
    assert estimate is not None
    assert (estimate.remaining_m, estimate.distance_source) == (0, "inside")
    assert estimate.expected_at == AT + timedelta(minutes=5)


def test_no_distance_no_estimate() -> None:
    assert estimate_last_mile(position(route_remaining_m=None, remaining_m=None), P) is None


def test_parameters_are_checked_and_named_in_the_version() -> None:
    assert P.version == "last-mile-1.d1.3.v8-80.h5.p1.5"
    for bad in ({"detour_factor": 0.9}, {"min_speed_kmh": 0}, {"min_speed_kmh": 90}, {"promise_factor": 0.5}):
        with pytest.raises(ValueError):
            LastMileParameters(**bad)


def test_confidence_from_fresh_steady_data_on_a_route() -> None:
    estimate = estimate_last_mile(position(), P)
    assert estimate is not None
    fresh = AT + timedelta(minutes=1)
    steady = estimate.expected_at + timedelta(minutes=3)
    assert confidence_of(estimate, P, handled_at=fresh, published_expected_at=steady) == "high"
    assert confidence_of(estimate, P, handled_at=fresh, published_expected_at=None) == "medium"  # first
    jumped = estimate.expected_at + timedelta(minutes=20)
    assert confidence_of(estimate, P, handled_at=fresh, published_expected_at=jumped) == "medium"
    stale = AT + timedelta(minutes=30)
    assert confidence_of(estimate, P, handled_at=stale, published_expected_at=steady) == "low"
    parked = estimate_last_mile(position(speed_kmh=2.0), P)
    assert parked is not None
    assert confidence_of(parked, P, handled_at=fresh, published_expected_at=parked.expected_at) == "low"
    line = estimate_last_mile(position(route_remaining_m=None, remaining_m=8_000), P)
    assert line is not None
    assert confidence_of(line, P, handled_at=fresh, published_expected_at=line.expected_at) == "medium"


def test_republished_only_when_the_arrival_moved_more_than_the_threshold() -> None:
    estimate = estimate_last_mile(position(), P)
    assert estimate is not None
    assert worth_publishing(None, estimate, P)
    assert not worth_publishing(estimate.expected_at + timedelta(minutes=1, seconds=59), estimate, P)
    assert worth_publishing(estimate.expected_at - timedelta(minutes=2, seconds=1), estimate, P)


def test_only_a_shipment_that_may_be_on_its_way_is_refined() -> None:
    # its vehicle's positions say it is moving, even before the status change that says so arrives
    for status in (Status.INFO_RECEIVED, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.EXCEPTION):
        assert refines(status)
    for status in (Status.DELIVERED, Status.FAILED_ATTEMPT, Status.AVAILABLE_FOR_PICKUP, Status.RETURNING):
        assert not refines(status)


def test_the_event_carries_the_arrival_and_local_dates() -> None:
    late = position(recorded_at=datetime(2026, 3, 2, 23, 50, tzinfo=BRT))  # arrives after midnight, BRT
    estimate = estimate_last_mile(late, P)
    assert estimate is not None
    shipment = ShipmentFacts(
        tracking_number="FLEET1", status=Status.OUT_FOR_DELIVERY,
        attributes=LaneAttributes("frota", None, "SP", "RJ"), first_seen_at=AT, last_event_at=AT,
    )  # fmt: skip
    now = datetime(2026, 3, 3, 2, 51, tzinfo=UTC)
    event = last_mile_event(
        shipment, estimate, clock=CalendarClock(BRT), confidence="medium", positions_seen=4,
        predicted_at=now, model_version=P.version,
    )  # fmt: skip
    assert (event.expected_date, event.promise_date) == (date(2026, 3, 3), date(2026, 3, 3))
    assert (event.expected_at, event.remaining_m) == (estimate.expected_at, 10_000)
    assert (event.milestone, event.basis_milestone, event.lane_level) == (
        Status.OUT_FOR_DELIVERY, "out_for_delivery", "last_mile",
    )  # fmt: skip
    assert event.lane == Lane(carrier="frota", origin="SP", destination="RJ")
    assert (event.sample_size, event.confidence, event.model_version) == (4, "medium", P.version)
