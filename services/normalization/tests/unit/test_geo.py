"""Geometry on a spherical earth, CEP prefix centroids and the synthetic trace generator."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from rastro_events import TelemetryPosition
from rastro_normalization.domain.geo import (
    bearing_deg,
    centroid_for,
    centroids_from_rows,
    distance_to_polyline_m,
    haversine_m,
    interpolate,
    polyline_length_m,
    postal_prefix,
)
from rastro_normalization.domain.traces import drive, road_polyline

pytestmark = pytest.mark.unit

SE = (-23.5503, -46.6339)  # Praça da Sé, São Paulo
RIO_CENTRO = (-22.9035, -43.1760)  # Centro, Rio de Janeiro
DEG_M = 111_195.08  # one degree of a great circle on R = 6,371,008.8 m
# An L at the equator: 0.01° east, then 0.01° north (1,111.95 m each leg)
L_ROUTE = ((0.0, 0.0), (0.0, 0.01), (0.01, 0.01))
LEG = 0.01 * DEG_M
START = datetime(2024, 5, 2, 13, 0, tzinfo=UTC)


def test_haversine_sao_paulo_se_to_rio_centro() -> None:
    assert 357_000 <= haversine_m(*SE, *RIO_CENTRO) <= 361_000
    assert haversine_m(*SE, *RIO_CENTRO) == pytest.approx(haversine_m(*RIO_CENTRO, *SE))


def test_haversine_one_degree_and_zero() -> None:
    assert haversine_m(0, 0, 0, 1) == pytest.approx(DEG_M, rel=1e-6)
    assert haversine_m(-10, -50, -9, -50) == pytest.approx(DEG_M, rel=1e-6)
    assert haversine_m(*SE, *SE) == 0.0


@pytest.mark.parametrize(
    ("point", "distance", "along"),
    [
        ((-0.002, 0.005), 0.2 * LEG, 0.5 * LEG),  # beside the first leg
        ((0.005, 0.012), 0.2 * LEG, 1.5 * LEG),  # beside the second leg
        ((0.0, -0.003), 0.3 * LEG, 0.0),  # before the start
        ((0.013, 0.01), 0.3 * LEG, 2 * LEG),  # past the end
        ((-0.001, 0.011), math.hypot(0.1, 0.1) * LEG, LEG),  # outside the corner
        ((0.0, 0.0075), 0.0, 0.75 * LEG),  # on the route
    ],
)
def test_distance_to_l_shaped_polyline(point: tuple[float, float], distance: float, along: float) -> None:
    got_distance, got_along = distance_to_polyline_m(point, L_ROUTE)
    assert got_distance == pytest.approx(distance, abs=0.5)
    assert got_along == pytest.approx(along, abs=0.5)


def test_polyline_distance_matches_haversine_at_sao_paulo_latitudes() -> None:
    route = (SE, (-23.60, -46.70), (-23.70, -46.65))
    for point in [(-23.58, -46.66), (-23.62, -46.66), (-23.66, -46.71)]:
        distance, along = distance_to_polyline_m(point, route)
        foot = interpolate(route, along)
        assert distance == pytest.approx(haversine_m(*point, *foot), rel=0.01)


def test_polyline_length_interpolate_and_bearing() -> None:
    assert polyline_length_m(L_ROUTE) == pytest.approx(2 * LEG, rel=1e-6)
    assert interpolate(L_ROUTE, 1.5 * LEG) == pytest.approx((0.005, 0.01))
    assert interpolate(L_ROUTE, -5) == L_ROUTE[0]
    assert interpolate(L_ROUTE, 10 * LEG) == L_ROUTE[-1]
    assert distance_to_polyline_m((0.0, 0.001), [(0.0, 0.0)]) == pytest.approx((0.001 * DEG_M, 0.0))
    assert bearing_deg((0, 0), (1, 0)) == pytest.approx(0.0)
    assert bearing_deg((0, 0), (0, 1)) == pytest.approx(90.0)
    assert bearing_deg((0, 0), (-1, 0)) == pytest.approx(180.0)
    assert bearing_deg((0, 0), (0, -1)) == pytest.approx(270.0)


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [
        ("01310-100", "01310"),
        ("01310100", "01310"),
        ("1310100", "01310"),  # a spreadsheet ate the leading zero
        ("01.310-100", "01310"),
        ("22041", "22041"),  # already a prefix
        ("", None),
        ("abc", None),
        ("0131010", "00131"),  # 7 digits is always read as a lost leading zero
        ("CEP 01310-100", None),
        ("123", None),
        ("00000-000", None),
        ("013101000", None),
    ],
)
def test_postal_prefix(raw: str, prefix: str | None) -> None:
    assert postal_prefix(raw) == prefix


def row(prefix: str, lat: float | str, lng: float | str) -> dict[str, str]:
    return {
        "geolocation_zip_code_prefix": prefix,
        "geolocation_lat": str(lat),
        "geolocation_lng": str(lng),
        "geolocation_city": "sao paulo",
        "geolocation_state": "SP",
    }


def test_centroids_are_medians_of_rows_inside_brazil() -> None:
    rows = [
        row("01310", -23.561, -46.656),
        row("01310", -23.563, -46.650),
        row("01310", -23.562, -46.700),  # a far street sample: the median shrugs it off
        row("01310", 38.38, -6.33),  # Portugal
        row("1310", -23.560, -46.655),  # leading zero lost
        row("28333", 45.06, 9.34),  # only outside Brazil: no centroid
        row("99999", "nan", -50.0),
        row("x", -10.0, -50.0),
        row("70000", "", -47.9),
    ]
    centroids = centroids_from_rows(rows)
    assert set(centroids) == {"01310"}
    lat, lon = centroids["01310"]
    assert lat == pytest.approx(-23.5615)
    assert lon == pytest.approx(-46.6555)
    assert centroid_for(centroids, "01310-100") == centroids["01310"]
    assert centroid_for(centroids, "22041-001") is None
    assert centroid_for(centroids, None) is None


def test_road_polyline_is_deterministic_pinned_and_winding() -> None:
    origin, destination = SE, (-23.65, -46.73)
    road = road_polyline(origin, destination, seed=11)
    assert road == road_polyline(origin, destination, seed=11)
    assert road != road_polyline(origin, destination, seed=12)
    assert len(road) == 40 and road[0] == origin and road[-1] == destination
    straight = haversine_m(*origin, *destination)
    widest = max(distance_to_polyline_m(p, (origin, destination))[0] for p in road)
    assert widest == pytest.approx(0.15 * straight, rel=0.05)
    assert polyline_length_m(road) > 1.05 * straight


def test_drive_is_deterministic_timed_and_valid_telemetry() -> None:
    road = road_polyline(SE, (-23.60, -46.68), seed=3)
    trace = drive(road, start=START, seed=5, stops=[(0.5, 600)], dwell_s=300)
    assert trace == drive(road, start=START, seed=5, stops=[(0.5, 600)], dwell_s=300)
    assert all(b.recorded_at - a.recorded_at == timedelta(seconds=15) for a, b in pairwise(trace))
    assert haversine_m(trace[0].latitude, trace[0].longitude, *SE) < 50
    assert haversine_m(trace[-1].latitude, trace[-1].longitude, *road[-1]) < 50
    standing = [p for p in trace if p.speed_kmh < 3]
    assert len(standing) >= (600 + 300) / 15
    moving = [p.speed_kmh for p in trace if p.speed_kmh >= 3]
    assert 30 < sum(moving) / len(moving) < 40
    for point in trace[::7]:
        TelemetryPosition.model_validate(point.to_api("truck-7"))
    assert trace[0].to_api("truck-7")["recorded_at"] == "2024-05-02T13:00:00+00:00"


def test_drive_detour_pushes_positions_off_the_route() -> None:
    road = road_polyline(SE, (-23.65, -46.73), seed=3)
    trace = drive(road, start=START, seed=5, detour=(0.3, 0.6, 2000))
    off = [distance_to_polyline_m((p.latitude, p.longitude), road)[0] for p in trace]
    assert max(off) > 1200
    assert sum(d > 1000 for d in off) >= 5
    assert all(d < 200 for d in off[-30:])
