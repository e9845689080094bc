"""Deterministic synthetic GPS traces of own-fleet vehicles, for tests, the benchmark and the demo.

``road_polyline`` draws a road-like route: a smoothed random walk of bends perpendicular to the
straight line, pinned to both ends (a Brownian bridge), so the road never runs backwards along it.
``drive`` drives a polyline: one fix every ``every_s`` seconds at about ``speed_kmh`` (each interval's
speed varies a little), seeded gaussian GPS noise, optional stops and an optional detour, and a final
dwell at the destination. Fractions (stops, detour) are fractions of the planned polyline's length.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from rastro_normalization.domain.geo import EARTH_RADIUS_M, Point, bearing_deg, haversine_m, interpolate
from rastro_normalization.domain.geo import polyline_length_m as _length

__all__ = ["TracePoint", "drive", "road_polyline"]

_M_PER_DEG = math.radians(1.0) * EARTH_RADIUS_M
_STEP_M = 25.0  # spacing of the densified path the vehicle actually drives


@dataclass(frozen=True)
class TracePoint:
    recorded_at: datetime
    latitude: float
    longitude: float
    speed_kmh: float
    heading: float | None
    accuracy_m: float | None

    def to_api(self, vehicle_id: str) -> dict[str, Any]:
        """The JSON of one position for ``POST /v1/telemetry``."""
        return {
            "vehicle_id": vehicle_id,
            "recorded_at": self.recorded_at.isoformat(),
            "latitude": self.latitude,
            "longitude": self.longitude,
            "speed_kmh": self.speed_kmh,
            "heading": self.heading,
            "accuracy_m": self.accuracy_m,
        }


def _offset(origin: Point, destination: Point, at: Point, metres: float) -> Point:
    """``at`` moved ``metres`` to the right of the direction origin -> destination (left if negative)."""
    cos_lat = math.cos(math.radians((origin[0] + destination[0]) / 2))
    east = (destination[1] - origin[1]) * cos_lat
    north = destination[0] - origin[0]
    norm = math.hypot(east, north) or 1.0
    right_east, right_north = north / norm, -east / norm
    return at[0] + metres * right_north / _M_PER_DEG, at[1] + metres * right_east / (_M_PER_DEG * cos_lat)


def _bridge(values: list[float]) -> list[float]:
    n = len(values) - 1
    return [v - values[0] - (values[-1] - values[0]) * i / n for i, v in enumerate(values)]


def road_polyline(
    origin: Point, destination: Point, *, seed: int, wiggle: float = 0.15, points: int = 40
) -> tuple[Point, ...]:
    """A road-like polyline of ``points`` vertices from exactly ``origin`` to exactly ``destination``.

    Its widest bend is ``wiggle`` times the straight-line distance away from the straight line.
    """
    if points < 2:
        raise ValueError("a polyline needs at least 2 points")
    straight = haversine_m(*origin, *destination)
    if points == 2 or straight == 0.0:
        return (origin, destination)
    rng = random.Random(seed)
    walk = [0.0]
    for _ in range(points - 1):
        walk.append(walk[-1] + rng.gauss(0.0, 1.0))
    lateral = _bridge(walk)
    for _ in range(3):  # smooth the zig-zag into bends
        lateral = _bridge(
            [
                lateral[0],
                *((a + b + c) / 3 for a, b, c in zip(lateral, lateral[1:], lateral[2:], strict=False)),
                lateral[-1],
            ]
        )
    widest = max(abs(v) for v in lateral) or 1.0
    scale = wiggle * straight / widest
    steps = [1.0 + 0.3 * rng.random() for _ in range(points - 1)]  # uneven spacing, still forward
    along = [0.0]
    for s in steps:
        along.append(along[-1] + s)
    result = []
    for t, y in zip((a / along[-1] for a in along), lateral, strict=True):
        on_line = (origin[0] + t * (destination[0] - origin[0]), origin[1] + t * (destination[1] - origin[1]))
        result.append(_offset(origin, destination, on_line, y * scale))
    result[0], result[-1] = origin, destination
    return tuple(result)


def _driven_path(polyline: Sequence[Point], detour: tuple[float, float, float] | None) -> list[Point]:
    """The planned polyline densified every ~25 m, pushed sideways over the detour's span.

    The detour pushes perpendicular to the straight line between the route's ends, not to the local
    road direction: offsetting a tight bend by kilometres would tie the path in loops. It ramps in and
    out smoothly over the first and last fifth of its span, so no fix jumps.
    """
    total = _length(polyline)
    count = max(2, math.ceil(total / _STEP_M) + 1)
    path = []
    for i in range(count):
        fraction = i / (count - 1)
        point = interpolate(polyline, fraction * total)
        if detour is not None:
            start, end, metres = detour
            point = _offset(polyline[0], polyline[-1], point, metres * _detour_shape(fraction, start, end))
        path.append(point)
    return path


def _detour_shape(fraction: float, start: float, end: float) -> float:
    if not start < fraction < end:
        return 0.0
    u = (fraction - start) / (end - start)
    ramp = min(1.0, u / 0.2, (1.0 - u) / 0.2)
    return ramp * ramp * (3 - 2 * ramp)  # smoothstep


def _noisy(point: Point, noise_m: float, rng: random.Random) -> Point:
    north, east = rng.gauss(0.0, noise_m), rng.gauss(0.0, noise_m)
    return point[0] + north / _M_PER_DEG, point[1] + east / (_M_PER_DEG * math.cos(math.radians(point[0])))


def _at(path: Sequence[Point], cum: Sequence[float], s: float) -> tuple[Point, float]:
    """The point ``s`` metres along the driven path, and the heading of the segment it is on."""
    i = min(max(1, bisect.bisect_left(cum, s)), len(path) - 1)
    a, b = path[i - 1], path[i]
    seg = cum[i] - cum[i - 1]
    t = 0.0 if seg == 0.0 else min(1.0, max(0.0, (s - cum[i - 1]) / seg))
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])), bearing_deg(a, b)


def drive(
    polyline: Sequence[Point],
    *,
    start: datetime,
    speed_kmh: float = 35,
    every_s: float = 15,
    noise_m: float = 8,
    seed: int,
    stops: Sequence[tuple[float, float]] = (),
    detour: tuple[float, float, float] | None = None,
    dwell_s: float = 300,
) -> list[TracePoint]:
    """Fixes every ``every_s`` s from ``start`` until ``dwell_s`` s after reaching the destination.

    ``stops``: (fraction of the way, seconds standing still). ``detour``: (start fraction, end fraction,
    metres to the right of the way, negative for the left). The reported speed is the speed of the
    interval that ends at the fix, about 0 while standing; ``accuracy_m`` is about twice the noise.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if len(polyline) < 2 or speed_kmh <= 0 or every_s <= 0:
        raise ValueError("need a polyline of 2+ points, a positive speed and a positive interval")
    rng = random.Random(seed)
    path = _driven_path(polyline, detour)
    cum = [0.0]
    for a, b in pairwise(path):
        cum.append(cum[-1] + haversine_m(*a, *b))
    last = len(path) - 1
    pending = sorted((cum[round(min(1.0, max(0.0, f)) * last)], seconds) for f, seconds in stops)
    s, t, standing, final_left, v = 0.0, 0.0, 0.0, dwell_s, speed_kmh / 3.6
    heading = bearing_deg(path[0], path[1])
    fixes = []
    while True:
        where, seg_heading = _at(path, cum, s)
        still = standing > 0 or s >= cum[-1]
        heading = heading if still else seg_heading
        reported = abs(rng.gauss(0.0, 0.3)) if still else max(0.0, v * 3.6 + rng.gauss(0.0, 1.0))
        lat, lon = _noisy(where, noise_m, rng)
        fixes.append(
            TracePoint(
                recorded_at=start + timedelta(seconds=t),
                latitude=round(lat, 7),
                longitude=round(lon, 7),
                speed_kmh=round(reported, 1),
                heading=round(heading, 1) % 360.0,
                accuracy_m=round(min(199.0, max(3.0, rng.gauss(2 * noise_m, noise_m / 4))), 1),
            )
        )
        if s >= cum[-1] and final_left <= 0:
            return fixes
        v = speed_kmh / 3.6 * min(1.3, max(0.7, 1.0 + rng.gauss(0.0, 0.1)))
        dt = every_s
        while dt > 1e-9:
            if standing > 0:
                used = min(dt, standing)
                standing -= used
            elif s >= cum[-1]:
                final_left -= dt
                used = dt
            else:
                target = pending[0][0] if pending else cum[-1]
                need = max(0.0, target - s) / v
                if need <= dt:
                    s, used = target, need
                    if pending:
                        standing = pending.pop(0)[1]
                else:
                    s, used = s + v * dt, dt
            dt -= used
        t += every_s
