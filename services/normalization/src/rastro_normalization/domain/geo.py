"""Geometry on WGS 84 with a spherical earth, and Brazilian ZIP (CEP) prefix centroids.

Distances between two points are great-circle (haversine) distances. Distances to a polyline use a local
equirectangular projection per segment, centred on the segment: for segments under ~50 km at Brazilian
latitudes the error is well under 1 %, and it is cheap enough to run for every GPS fix. Along-route
distances are measured with haversine segment lengths, so ``distance_to_polyline_m`` at the last vertex
equals ``polyline_length_m``.

``centroids_from_rows`` turns rows of the Olist geolocation CSV (many rows per 5-digit prefix, a few of
them far outside Brazil) into one point per prefix: the per-coordinate median of the rows inside
Brazil's bounding box. Reading the file is the caller's business.
"""

from __future__ import annotations

import math
import re
import statistics
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import pairwise
from typing import TypeAlias

__all__ = [
    "BRAZIL_BOUNDS",
    "EARTH_RADIUS_M",
    "Point",
    "ZipCentroids",
    "bearing_deg",
    "centroid_for",
    "centroids_from_rows",
    "distance_to_polyline_m",
    "haversine_m",
    "interpolate",
    "polyline_length_m",
    "postal_prefix",
]

EARTH_RADIUS_M = 6_371_008.8
"""Mean earth radius (IUGG), metres."""

Point: TypeAlias = tuple[float, float]
"""(latitude, longitude) in WGS 84 degrees."""

ZipCentroids: TypeAlias = Mapping[str, Point]
"""5-digit CEP prefix -> centroid, as built by ``centroids_from_rows``."""

BRAZIL_BOUNDS = ((-34.0, 6.0), (-74.0, -28.0))
"""((min lat, max lat), (min lon, max lon)): Brazil with its islands, a generous box."""

_POSTAL_SHAPE = re.compile(r"^[\d\s.\-]+$")


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlam = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(a: Point, b: Point) -> float:
    """Initial great-circle bearing from ``a`` to ``b``, degrees clockwise from north in [0, 360)."""
    phi1, phi2 = math.radians(a[0]), math.radians(b[0])
    dlam = math.radians(b[1] - a[1])
    y = math.sin(dlam) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlam)
    return math.degrees(math.atan2(y, x)) % 360.0


_M_PER_DEG = math.radians(1.0) * EARTH_RADIUS_M


def _wrap_deg(delta: float) -> float:
    return (delta + 180.0) % 360.0 - 180.0


@lru_cache(maxsize=1024)
def _measure(polyline: tuple[Point, ...]) -> tuple[tuple[float, ...], tuple[tuple[float, ...], ...]]:
    """Distance from the start to each vertex (haversine), and each segment in its own local plane:
    (lat a, lon a, metres per degree of longitude there, east and north extent in m, squared length).

    Cached: a route is measured once, not once per GPS fix.
    """
    along, planes = [0.0], []
    for a, b in pairwise(polyline):
        along.append(along[-1] + haversine_m(*a, *b))
        kx = _M_PER_DEG * math.cos(math.radians((a[0] + b[0]) / 2))
        bx, by = _wrap_deg(b[1] - a[1]) * kx, (b[0] - a[0]) * _M_PER_DEG
        planes.append((a[0], a[1], kx, bx, by, bx * bx + by * by))
    return tuple(along), tuple(planes)


def polyline_length_m(polyline: Sequence[Point]) -> float:
    return _measure(tuple(polyline))[0][-1] if polyline else 0.0


def distance_to_polyline_m(point: Point, polyline: Sequence[Point]) -> tuple[float, float]:
    """(distance from ``point`` to the nearest segment, distance along the polyline to the projection).

    Both in metres. The first nearest segment wins a tie (a route that doubles back on itself).
    """
    if not polyline:
        raise ValueError("empty polyline")
    if len(polyline) == 1:
        return haversine_m(*point, *polyline[0]), 0.0
    along, planes = _measure(tuple(polyline))
    lat, lon = point
    best, best_at, best_t = math.inf, 0, 0.0
    for i, (a_lat, a_lon, kx, bx, by, seg2) in enumerate(planes):
        px, py = ((lon - a_lon + 180.0) % 360.0 - 180.0) * kx, (lat - a_lat) * _M_PER_DEG
        dot = px * bx + py * by
        t = 0.0 if dot <= 0.0 else 1.0 if dot >= seg2 else dot / seg2
        dx, dy = px - t * bx, py - t * by
        d2 = dx * dx + dy * dy
        if d2 < best:
            best, best_at, best_t = d2, i, t
    return math.sqrt(best), along[best_at] + best_t * (along[best_at + 1] - along[best_at])


def interpolate(polyline: Sequence[Point], distance_m: float) -> Point:
    """The point ``distance_m`` along the polyline, clamped to its ends."""
    if not polyline:
        raise ValueError("empty polyline")
    along = _measure(tuple(polyline))[0]
    if distance_m <= 0.0 or len(polyline) == 1:
        return polyline[0]
    if distance_m >= along[-1]:
        return polyline[-1]
    i = bisect_right(along, distance_m)  # 1 <= i < len(along): the segment polyline[i - 1] -> polyline[i]
    a, b = polyline[i - 1], polyline[i]
    t = (distance_m - along[i - 1]) / (along[i] - along[i - 1])
    return a[0] + t * (b[0] - a[0]), a[1] + t * _wrap_deg(b[1] - a[1])


def postal_prefix(postal_code: str) -> str | None:
    """The 5-digit CEP prefix: ``"01310-100"`` -> ``"01310"``; a 7-digit CEP lost its leading zero.

    A bare 5-digit prefix is returned as is. Anything else (letters, wrong length, all zeros) -> None.
    """
    if not _POSTAL_SHAPE.match(postal_code):
        return None
    digits = re.sub(r"\D", "", postal_code)
    if len(digits) == 7:
        digits = "0" + digits
    if len(digits) not in (5, 8) or digits[:5] == "00000":
        return None
    return digits[:5]


def _inside_brazil(lat: float, lon: float) -> bool:
    (lat_min, lat_max), (lon_min, lon_max) = BRAZIL_BOUNDS
    return lat_min <= lat <= lat_max and lon_min <= lon <= lon_max


def centroids_from_rows(rows: Iterable[Mapping[str, str]]) -> dict[str, Point]:
    """Per-prefix median of the Olist geolocation rows inside Brazil; unreadable rows are skipped.

    The median, not the mean: a prefix's rows are street-level samples, and a mis-geocoded one
    (Portugal, the Atlantic) inside the box would still drag a mean by kilometres.
    """
    samples: defaultdict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for row in rows:
        raw = (row.get("geolocation_zip_code_prefix") or "").strip()
        if not raw.isdigit() or len(raw) not in (4, 5):  # a spreadsheet ate the leading zero
            continue
        try:
            lat, lon = float(row["geolocation_lat"]), float(row["geolocation_lng"])
        except (KeyError, TypeError, ValueError):
            continue
        if _inside_brazil(lat, lon):  # also drops NaN
            lats, lons = samples[raw.zfill(5)]
            lats.append(lat)
            lons.append(lon)
    return {
        prefix: (statistics.median(lats), statistics.median(lons)) for prefix, (lats, lons) in samples.items()
    }


def centroid_for(centroids: ZipCentroids, postal_code: str | None) -> Point | None:
    """Where a postal code roughly is, or None when it is junk or its prefix is unknown."""
    prefix = postal_prefix(postal_code) if postal_code else None
    return centroids.get(prefix) if prefix else None
