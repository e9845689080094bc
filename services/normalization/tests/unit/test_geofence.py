"""The per-shipment geofence driven by synthetic GPS traces (domain.traces) and hand-made fixes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from rastro_events import TelemetryPosition
from rastro_normalization.domain.geo import Point, haversine_m, polyline_length_m
from rastro_normalization.domain.geofence import FenceSettings, FenceState, ShipmentGeometry, Step, step
from rastro_normalization.domain.traces import TracePoint, drive, road_polyline

pytestmark = pytest.mark.unit

ORIGIN = (-23.5505, -46.6333)  # a depot near Sé, São Paulo
DESTINATION = (-23.6500, -46.7300)  # ~15 km south-west
ROAD = road_polyline(ORIGIN, DESTINATION, seed=1)
GEOMETRY = ShipmentGeometry(destination=DESTINATION, origin=ORIGIN, route=ROAD)
SETTINGS = FenceSettings()
START = datetime(2024, 5, 2, 13, 0, tzinfo=UTC)


def trace(**options: Any) -> list[TracePoint]:
    fixes: list[TracePoint] = drive(ROAD, start=START, **{"seed": 7, **options})
    return fixes


def run(fixes: Iterable[TracePoint], state: FenceState | None = None) -> list[Step]:
    steps, current = [], state or FenceState()
    for fix in fixes:
        result = step(current, GEOMETRY, fix, SETTINGS)
        steps.append(result)
        current = result.state
    return steps


def known(value: float | None) -> float:
    assert value is not None
    return value


def kinds(steps: Sequence[Step]) -> list[str]:
    return [event.kind for s in steps for event in s.events]


def fix(at_s: float, point: Point, speed: float = 30.0, accuracy: float | None = 10.0) -> TracePoint:
    return TracePoint(START + timedelta(seconds=at_s), point[0], point[1], speed, None, accuracy)


def north_of(point: Point, metres: float) -> Point:
    return point[0] + metres / 111_195.0, point[1]


@pytest.mark.parametrize(("seed", "noise"), [(1, 8), (2, 8), (3, 25), (4, 40)])
def test_a_trace_arrives_exactly_once_despite_noise_and_dwell(seed: int, noise: float) -> None:
    steps = run(trace(seed=seed, noise_m=noise, dwell_s=1800))
    assert kinds(steps) == ["departed_origin", "arrived"]
    arrival = next(s for s in steps if s.events and s.events[0].kind == "arrived")
    assert arrival.remaining_m is not None and arrival.remaining_m < SETTINGS.arrival_radius_m
    assert arrival.events[0].distance_m == arrival.remaining_m
    assert arrival.events[0].detail.endswith("m from the destination")
    assert arrival.publish_position


def test_leaving_and_coming_back_raises_nothing_more() -> None:
    there = trace()
    back = drive(tuple(reversed(ROAD)), start=there[-1].recorded_at + timedelta(minutes=1), seed=8)
    again = drive(ROAD, start=back[-1].recorded_at + timedelta(minutes=1), seed=9)
    assert kinds(run([*there, *back, *again])) == ["departed_origin", "arrived"]


def test_departure_once_from_inside_and_not_for_a_vehicle_parked_outside() -> None:
    steps = run(trace())
    departure = next(s for s in steps if s.events)
    assert [e.kind for e in departure.events] == ["departed_origin"]
    assert departure.events[0].distance_m is not None and departure.events[0].distance_m > 300
    parked = ROAD[5]  # on the route, 2 km from the depot
    still = run([fix(0, parked, speed=0), fix(60, parked, speed=0)])
    assert kinds(still) == [] and not still[-1].state.departed
    moving = run([fix(120, ROAD[6], speed=20)], still[-1].state)
    assert kinds(moving) == ["departed_origin"]


@pytest.mark.parametrize("noise", [8, 20])
def test_a_fifteen_minute_stop_mid_route_raises_one_long_stop(noise: float) -> None:
    steps = run(trace(stops=[(0.5, 900)], noise_m=noise))
    assert kinds(steps) == ["departed_origin", "long_stop", "arrived"]
    stop = next(e for s in steps for e in s.events if e.kind == "long_stop")
    assert stop.detail == "stopped 10 min"
    assert 4000 < haversine_m(*stop.point, *DESTINATION) < 11000


def test_short_stops_and_loading_at_the_depot_raise_no_long_stop() -> None:
    assert kinds(run(trace(stops=[(0.0, 1800), (0.4, 300), (0.7, 420)]))) == ["departed_origin", "arrived"]


def test_a_two_km_detour_raises_one_deviation_and_one_back_on_route() -> None:
    steps = run(trace(detour=(0.3, 0.6, 2000)))
    assert kinds(steps) == ["departed_origin", "route_deviation", "back_on_route", "arrived"]
    deviation, back = (e for s in steps for e in s.events if "route" in e.kind)
    assert deviation.distance_m is not None and deviation.distance_m > SETTINGS.corridor_m
    assert deviation.detail.endswith("km off the planned route")
    assert back.distance_m is not None and back.distance_m <= SETTINGS.corridor_m
    assert back.recorded_at - deviation.recorded_at > timedelta(minutes=3)


def test_off_route_needs_consecutive_confirmation() -> None:
    on, off = ROAD[20], north_of(ROAD[20], 1500)  # 1.46 km from the nearest bit of road
    flicker = [fix(60 * i, off if i % 3 else on) for i in range(12)]  # never 3 off in a row
    steps = run(flicker)
    assert kinds(steps) == ["departed_origin"]
    confirmed = run([fix(60 * (12 + i), off) for i in range(3)], steps[-1].state)
    assert kinds(confirmed) == ["route_deviation"]


def test_single_noisy_outliers_raise_nothing_and_change_nothing() -> None:
    clean = trace(stops=[(0.5, 900)])
    outliers = {  # each 8 s after the fix before it: jumps far faster than 300 km/h, or a blurred fix
        i: replace(clean[i], recorded_at=clean[i].recorded_at - timedelta(seconds=7), latitude=lat)
        for i, lat in [(40, clean[40].latitude + 0.05), (80, clean[80].latitude + 0.015), (120, -23.0)]
    }
    outliers[60] = replace(clean[60], latitude=DESTINATION[0], longitude=DESTINATION[1], accuracy_m=500.0)
    noisy = [f for i, c in enumerate(clean) for f in ([outliers[i], c] if i in outliers else [c])]
    clean_steps, noisy_steps = run(clean), run(noisy)
    assert [(e.kind, e.recorded_at) for s in noisy_steps for e in s.events] == [
        (e.kind, e.recorded_at) for s in clean_steps for e in s.events
    ]
    assert noisy_steps[-1].state == clean_steps[-1].state
    ignored = [s for before, s in pairwise(noisy_steps) if s.state is before.state]
    assert len(ignored) == 4 and not any(s.publish_position or s.events for s in ignored)


def test_out_of_order_and_duplicate_positions_change_nothing() -> None:
    fixes = trace()
    steps = run(fixes[:60])
    state = steps[-1].state
    for old in [fixes[59], fixes[0], fixes[30], fixes[59]]:
        late = step(state, GEOMETRY, old, SETTINGS)
        assert late.state is state and late.events == () and not late.publish_position
        assert late.remaining_m == steps[-1].remaining_m and late.speed_kmh == steps[-1].speed_kmh
    swapped = list(fixes)
    for i in range(1, len(swapped) - 1, 9):
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    doubled = [f for f in swapped for _ in range(2)]
    assert kinds(run(doubled)) == ["departed_origin", "arrived"]


def test_remaining_distance_shrinks_along_the_trace() -> None:
    steps = run(trace())
    arrived_at = next(i for i, s in enumerate(steps) if s.state.arrived)
    remaining = [known(s.remaining_m) for s in steps[: arrived_at + 1]]
    along = [known(s.route_remaining_m) for s in steps[: arrived_at + 1]]
    assert remaining[0] == pytest.approx(haversine_m(*ORIGIN, *DESTINATION), abs=50)
    assert along[0] == pytest.approx(polyline_length_m(ROAD), abs=50)
    assert remaining[-1] < SETTINGS.arrival_radius_m
    every_two_min = list(pairwise(remaining[::8]))
    assert all(b < a + 100 for a, b in every_two_min)  # the road winds: roughly, not strictly
    assert sum(b < a for a, b in every_two_min) >= 0.8 * len(every_two_min)
    assert all(b < a + 30 for a, b in pairwise(along))  # along the route: only GPS noise goes back


def test_publishes_every_two_minutes_and_with_each_event() -> None:
    steps = run(trace(stops=[(0.5, 900)], detour=(0.2, 0.3, 2000)))
    published = [s.state.last.recorded_at for s in steps if s.publish_position and s.state.last]
    assert published[0] == START
    gaps = [b - a for a, b in pairwise(published)]
    assert max(gaps) <= timedelta(seconds=135)
    for s in steps:
        if s.events:
            assert s.publish_position


def test_recent_speed_counts_stopped_time() -> None:
    steps = run(trace(stops=[(0.5, 1200)]))
    cruising = [s.speed_kmh for s in steps[45:60]]
    assert all(30 < v < 40 for v in cruising)
    end_of_stop = max(i for i, s in enumerate(steps) if s.state.stop_started_at and not s.state.arrived)
    assert steps[end_of_stop].speed_kmh < 3


@pytest.mark.parametrize("split", [1, 20, 75, 150])
def test_json_round_trip_preserves_behaviour(split: int) -> None:
    fixes = trace(stops=[(0.5, 900)], detour=(0.2, 0.35, 2000))
    steps = run(fixes[:split])
    stored = json.loads(json.dumps(steps[-1].state.to_json()))
    restored = FenceState.from_json(stored)
    assert restored == steps[-1].state
    assert FenceState.from_json({"v": 1}) == FenceState()  # a field added later reads its default
    assert run(fixes[split:], restored) == run(fixes[split:], steps[-1].state)


def test_state_json_stays_under_one_kilobyte_after_a_long_trace() -> None:
    far = (-22.9035, -47.0626)  # Campinas, ~90 km
    road = road_polyline(ORIGIN, far, seed=2, points=120)
    geometry = ShipmentGeometry(destination=far, origin=ORIGIN, route=road)
    fixes = drive(road, start=START, seed=3, stops=[(0.3, 1200), (0.6, 900)], detour=(0.4, 0.5, 3000))
    current, largest = FenceState(), 0
    for f in fixes:
        current = step(current, geometry, f, SETTINGS).state
        largest = max(largest, len(json.dumps(current.to_json())))
    assert len(fixes) > 600 and current.arrived
    assert largest < 1024


def test_telemetry_position_events_drive_the_same_geofence() -> None:
    fixes = trace(stops=[(0.5, 900)])
    positions = [TelemetryPosition.model_validate(f.to_api("truck-1")) for f in fixes]
    current, events = FenceState(), list[str]()
    for position in positions:
        result = step(current, GEOMETRY, position, SETTINGS)
        current, events = result.state, [*events, *(e.kind for e in result.events)]
    assert events == kinds(run(fixes)) == ["departed_origin", "long_stop", "arrived"]


def test_without_geometry_nothing_is_raised_and_nothing_is_remaining() -> None:
    bare = ShipmentGeometry(destination=None, origin=None, route=None)
    current = FenceState()
    for f in trace(stops=[(0.5, 900)])[:40]:
        result = step(current, bare, f, SETTINGS)
        assert result.remaining_m is None and result.route_remaining_m is None
        assert all(e.kind == "long_stop" for e in result.events)
        current = result.state
