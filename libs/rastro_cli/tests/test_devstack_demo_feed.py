"""The demo feed is pure and deterministic, and looks like Correios."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from rastro_cli.devstack.demo_feed import CODES, PROGRESS, demo_events, s10_tracking_number
from rastro_cli.devstack.demo_fleet import DEPOT, demo_fleet
from rastro_normalization.domain.geo import haversine_m

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 17, 20, 11, tzinfo=UTC)


def _by_shipment(events: list[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    shipments: dict[str, list[dict[str, object]]] = defaultdict(list)
    for event in events:
        shipments[str(event["tracking_number"])].append(event)
    return shipments


@pytest.mark.parametrize(
    ("prefix", "serial", "expected"),
    [
        ("AA", 12345678, "AA123456785BR"),  # DESIGN §11's example
        ("JT", 12472045, "JT124720455BR"),
        ("SS", 0, "SS000000005BR"),  # remainder 0: check digit 5
        ("QB", 8, "QB000000080BR"),  # remainder 1: check digit 0
    ],
)
def test_tracking_numbers_carry_the_s10_check_digit(prefix: str, serial: int, expected: str) -> None:
    assert s10_tracking_number(prefix, serial) == expected


def test_same_seed_and_hour_give_the_same_events_and_another_hour_new_shipments() -> None:
    events = demo_events(7, NOW)
    assert events == demo_events(7, NOW + timedelta(minutes=30))
    assert set(_by_shipment(events)).isdisjoint(_by_shipment(demo_events(7, NOW + timedelta(hours=1))))
    assert events != demo_events(8, NOW)


def test_each_shipment_follows_the_correios_journey_in_order() -> None:
    shipments = _by_shipment(demo_events(7, NOW))
    assert sorted(len(e) for e in shipments.values()) == sorted(PROGRESS)
    for events in shipments.values():
        assert [e["status_code"] for e in events] == list(CODES[: len(events)])
        times = [datetime.fromisoformat(str(e["occurred_at"])) for e in events]
        assert times == sorted(times)


def test_events_are_brazilian_local_times_before_now() -> None:
    events = demo_events(7, NOW)
    assert [e["occurred_at"] for e in events] == sorted(str(e["occurred_at"]) for e in events)
    for event in events:
        occurred = datetime.fromisoformat(str(event["occurred_at"]))
        assert occurred.utcoffset() == timedelta(hours=-3)
        assert str(event["occurred_at"]).endswith("-03:00")
        assert occurred <= NOW
        assert event["carrier"] == "correios" and event["type"] == "tracking.event"
        assert event["location"]["country"] == "BR"


def test_deliveries_happen_in_the_daytime() -> None:
    for hours in range(24):
        for event in demo_events(3, NOW + timedelta(hours=hours)):
            hour = datetime.fromisoformat(str(event["occurred_at"])).hour
            if event["status_code"] in {"PO-01", "OEC-01"}:
                assert 7 <= hour < 17, event


def test_the_demo_van_is_on_its_way_now_and_the_same_within_the_hour() -> None:
    now = datetime(2026, 11, 30, 14, 20, tzinfo=UTC)
    fleet = demo_fleet(7, now)
    assert fleet == demo_fleet(7, now)  # deterministic: a restart posts the same (idempotent) things
    assert fleet.order["vehicle_id"] and fleet.order["route_id"] == fleet.route_id
    assert fleet.order["tracking_number"] == fleet.tracking_number
    last = fleet.positions[-1].recorded_at
    assert timedelta(0) < now - last <= timedelta(seconds=30)  # ingest refuses fixes in the future
    assert fleet.positions[0].recorded_at > now - timedelta(hours=1)
    # two thirds of the way: moving away from the depot, still short of the destination
    home = (fleet.order["destination"]["latitude"], fleet.order["destination"]["longitude"])
    left = haversine_m(fleet.positions[-1].latitude, fleet.positions[-1].longitude, *home)
    assert 500 < left < haversine_m(*DEPOT, *home)
    assert demo_fleet(7, now + timedelta(hours=1)).tracking_number != fleet.tracking_number
