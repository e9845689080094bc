"""The per-shipment geofence: one GPS fix of the carrying vehicle in, a new state and events out.

- A fix recorded at or before the last accepted one (late, duplicated) changes nothing; nor does a bad one
  (accuracy worse than ``max_accuracy_m``; a jump from the last good fix faster than ``max_speed_kmh``).
- ``departed_origin``, once, before arrival: the first fix farther than ``departure_radius_m`` + its accuracy
  from the origin, if the previous fix was inside that radius or the vehicle moves (>= ``stop_speed_kmh``):
  a vehicle first seen parked outside its depot has not departed yet.
- ``route_deviation`` after ``deviation_confirm`` consecutive fixes outside ``corridor_m`` of the route, once
  until ``back_on_route`` after as many consecutive fixes inside.
- ``long_stop``, once per stop: slower than ``stop_speed_kmh`` for ``long_stop_s`` within ``stop_radius_m``
  + accuracy of the stop's place (the mean of its fixes); not in the destination area (delivering) nor,
  before departure, in the origin area (loading).
- ``arrived``, exactly once: the first fix within ``arrival_radius_m`` of the destination. After it, route
  and stops are no longer watched (the vehicle goes on to other work).

``speed_kmh`` averages the odometer over the last 1 to 1.2 ``speed_window_s`` (stops included; a standing
vehicle's jitter is not distance).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from rastro_normalization.domain.geo import Point, distance_to_polyline_m, haversine_m, polyline_length_m

__all__ = ["FenceEvent", "FenceSettings", "FenceState", "Fix", "GpsFix", "ShipmentGeometry", "Step", "step"]

EventKind = Literal["arrived", "departed_origin", "long_stop", "route_deviation", "back_on_route"]


class GpsFix(Protocol):
    """Anything with a GPS fix: ``rastro_events.TelemetryPosition``, ``domain.traces.TracePoint``."""

    @property
    def recorded_at(self) -> datetime: ...
    @property
    def latitude(self) -> float: ...
    @property
    def longitude(self) -> float: ...
    @property
    def speed_kmh(self) -> float: ...
    @property
    def accuracy_m(self) -> float | None: ...


@dataclass(frozen=True)
class FenceSettings:
    arrival_radius_m: float = 500.0
    departure_radius_m: float = 300.0
    long_stop_s: float = 600.0
    stop_speed_kmh: float = 3.0
    stop_radius_m: float = 50.0
    corridor_m: float = 1000.0
    deviation_confirm: int = 3
    position_every_s: float = 120.0
    speed_window_s: float = 600.0
    max_accuracy_m: float = 200.0
    max_speed_kmh: float = 300.0


@dataclass(frozen=True)
class ShipmentGeometry:
    destination: Point | None
    origin: Point | None
    route: tuple[Point, ...] | None


@dataclass(frozen=True)
class Fix:
    point: Point
    recorded_at: datetime
    speed_kmh: float


@dataclass(frozen=True)
class FenceState:
    """What the processor stores per (tenant, tracking number). ``to_json`` stays well under 1 KB."""

    last: Fix | None = None
    arrived: bool = False
    departed: bool = False
    stop_started_at: datetime | None = None
    stop_point: Point | None = None
    stop_fixes: int = 0  # how many fixes stop_point averages (at most 30)
    long_stop_raised: bool = False
    off_route_count: int = 0  # consecutive fixes outside the corridor, capped at deviation_confirm
    on_route_count: int = 0  # consecutive fixes inside it, likewise
    deviated: bool = False
    last_published_at: datetime | None = None
    odometer_m: float = 0.0
    speed_marks: tuple[tuple[float, float], ...] = field(default=())  # (epoch s, odometer m), oldest first

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        last = self.last
        data["last"] = None if last is None else [*last.point, last.recorded_at.isoformat(), last.speed_kmh]
        data["stop_point"] = None if self.stop_point is None else list(self.stop_point)
        data["speed_marks"] = [list(mark) for mark in self.speed_marks]
        for name in ("stop_started_at", "last_published_at"):
            data[name] = None if data[name] is None else data[name].isoformat()
        return {"v": 1, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FenceState:
        """Missing keys take their defaults (stored before the field existed); unknown ones are dropped."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if (last := values.get("last")) is not None:
            values["last"] = Fix((last[0], last[1]), datetime.fromisoformat(last[2]), last[3])
        if (stop_point := values.get("stop_point")) is not None:
            values["stop_point"] = (stop_point[0], stop_point[1])
        values["speed_marks"] = tuple((t, odometer) for t, odometer in values.get("speed_marks", ()))
        for name in ("stop_started_at", "last_published_at"):
            values[name] = None if values.get(name) is None else datetime.fromisoformat(values[name])
        return cls(**values)


@dataclass(frozen=True)
class FenceEvent:
    kind: EventKind
    recorded_at: datetime
    point: Point
    detail: str
    distance_m: float | None


@dataclass(frozen=True)
class Step:
    state: FenceState
    events: tuple[FenceEvent, ...]
    publish_position: bool
    speed_kmh: float
    remaining_m: float | None
    route_remaining_m: float | None


def _metres(distance: float) -> str:
    return f"{distance:.0f} m" if distance < 1000 else f"{distance / 1000:.1f} km"


@dataclass(frozen=True)
class _Seen:
    point: Point
    at: datetime
    speed_kmh: float
    accuracy_m: float
    to_origin: float | None
    to_destination: float | None
    off_route_m: float | None
    route_left_m: float | None

    def event(self, kind: EventKind, detail: str, distance_m: float | None) -> FenceEvent:
        return FenceEvent(kind, self.at, self.point, detail, distance_m)


def _observe(point: Point, at: datetime, speed: float, accuracy: float, geometry: ShipmentGeometry) -> _Seen:
    to_origin = None if geometry.origin is None else haversine_m(*point, *geometry.origin)
    to_destination = None if geometry.destination is None else haversine_m(*point, *geometry.destination)
    off_route = route_left = None
    if geometry.route is not None and len(geometry.route) >= 2:
        off_route, along = distance_to_polyline_m(point, geometry.route)
        route_left = max(0.0, polyline_length_m(geometry.route) - along)
    return _Seen(point, at, speed, accuracy, to_origin, to_destination, off_route, route_left)


def _acceptable(state: FenceState, position: GpsFix, settings: FenceSettings) -> bool:
    accuracy = position.accuracy_m
    if accuracy is not None and accuracy > settings.max_accuracy_m:
        return False
    last = state.last
    if last is None:
        return True
    elapsed = (position.recorded_at - last.recorded_at).total_seconds()
    if elapsed <= 0:
        return False
    jump = haversine_m(*last.point, position.latitude, position.longitude) - (accuracy or 0.0)
    return max(0.0, jump) / elapsed * 3.6 <= settings.max_speed_kmh


def _departure(state: FenceState, seen: _Seen, geo: ShipmentGeometry, settings: FenceSettings) -> _Rule:
    away = seen.to_origin
    if geo.origin is None or away is None or state.departed or state.arrived:
        return state, None
    if away <= settings.departure_radius_m + seen.accuracy_m:
        return state, None
    last = state.last
    was_inside = last is not None and haversine_m(*last.point, *geo.origin) <= settings.departure_radius_m
    if not was_inside and seen.speed_kmh < settings.stop_speed_kmh:
        return state, None
    detail = f"{_metres(away)} from the origin"
    return replace(state, departed=True), seen.event("departed_origin", detail, away)


def _route(state: FenceState, seen: _Seen, geo: ShipmentGeometry, settings: FenceSettings) -> _Rule:
    off_route, confirm = seen.off_route_m, settings.deviation_confirm
    if off_route is None or state.arrived:
        return state, None
    off = min(confirm, state.off_route_count + 1) if off_route > settings.corridor_m else 0
    on = 0 if off else min(confirm, state.on_route_count + 1)
    if (off, on) != (state.off_route_count, state.on_route_count):  # replace() is the cost of a step
        state = replace(state, off_route_count=off, on_route_count=on)
    if not state.deviated and state.off_route_count >= confirm:
        detail = f"{_metres(off_route)} off the planned route"
        return replace(state, deviated=True), seen.event("route_deviation", detail, off_route)
    if state.deviated and state.on_route_count >= confirm:
        detail = f"back on the planned route, {_metres(off_route)} from it"
        return replace(state, deviated=False), seen.event("back_on_route", detail, off_route)
    return state, None


def _stop(state: FenceState, seen: _Seen, geo: ShipmentGeometry, settings: FenceSettings) -> _Rule:
    if seen.speed_kmh >= settings.stop_speed_kmh:
        if state.stop_started_at is None:
            return state, None
        return replace(
            state, stop_started_at=None, stop_point=None, stop_fixes=0, long_stop_raised=False
        ), None
    started, where, radius = state.stop_started_at, state.stop_point, settings.stop_radius_m + seen.accuracy_m
    if started is None or where is None or haversine_m(*seen.point, *where) > radius:
        return replace(
            state, stop_started_at=seen.at, stop_point=seen.point, stop_fixes=1, long_stop_raised=False
        ), None
    n = min(state.stop_fixes + 1, 30)  # the stop's place is the mean of its fixes: one noisy fix won't end it
    mean = (where[0] + (seen.point[0] - where[0]) / n, where[1] + (seen.point[1] - where[1]) / n)
    state = replace(state, stop_point=mean, stop_fixes=n)
    stood = (seen.at - started).total_seconds()
    delivering = seen.to_destination is not None and seen.to_destination <= settings.arrival_radius_m
    near_origin = seen.to_origin is not None and seen.to_origin <= settings.departure_radius_m
    loading = not state.departed and near_origin
    if state.long_stop_raised or stood < settings.long_stop_s or state.arrived or delivering or loading:
        return state, None
    detail = f"stopped {stood / 60:.0f} min"
    return replace(state, long_stop_raised=True), seen.event("long_stop", detail, None)


def _arrival(state: FenceState, seen: _Seen, geo: ShipmentGeometry, settings: FenceSettings) -> _Rule:
    near = seen.to_destination
    if state.arrived or near is None or near > settings.arrival_radius_m:
        return state, None
    return replace(state, arrived=True), seen.event("arrived", f"{_metres(near)} from the destination", near)


_Rule = tuple[FenceState, FenceEvent | None]
_RULES = (_departure, _route, _stop, _arrival)


def _odometer(
    state: FenceState, seen: _Seen, settings: FenceSettings
) -> tuple[float, tuple[tuple[float, float], ...]]:
    """Add the distance since the last fix and keep a few (time, odometer) marks for the average."""
    odometer = state.odometer_m
    if state.last is not None:
        moved = haversine_m(*state.last.point, *seen.point)
        if seen.speed_kmh >= settings.stop_speed_kmh or moved > settings.stop_radius_m:
            odometer = round(odometer + moved, 1)
    now, window, marks = seen.at.timestamp(), settings.speed_window_s, state.speed_marks
    if not marks or now - marks[-1][0] >= window / 5:  # a handful of marks per window keeps the JSON small
        marks = (*marks, (now, odometer))
    # the oldest mark kept is the newest one at least a window old; none older than two (a long gap)
    while len(marks) >= 2 and (marks[1][0] <= now - window or marks[0][0] < now - 2 * window):
        marks = marks[1:]
    return odometer, marks


def _average_kmh(state: FenceState) -> float:
    last, marks = state.last, state.speed_marks
    if last is None:
        return 0.0
    elapsed = last.recorded_at.timestamp() - marks[0][0] if marks else 0.0
    if elapsed <= 0:
        return last.speed_kmh
    return max(0.0, (state.odometer_m - marks[0][1]) / elapsed * 3.6)


def step(state: FenceState, geometry: ShipmentGeometry, position: GpsFix, settings: FenceSettings) -> Step:
    """Fold one fix of the vehicle into one shipment's geofence state."""
    if not _acceptable(state, position, settings):
        last = state.last
        if last is None:
            return Step(state, (), False, 0.0, None, None)
        seen = _observe(last.point, last.recorded_at, last.speed_kmh, 0.0, geometry)
        return Step(state, (), False, _average_kmh(state), seen.to_destination, seen.route_left_m)
    point, at = (position.latitude, position.longitude), position.recorded_at
    seen = _observe(point, at, position.speed_kmh, position.accuracy_m or 0.0, geometry)
    events: list[FenceEvent] = []
    new = state
    for rule in _RULES:
        new, event = rule(new, seen, geometry, settings)
        if event is not None:
            events.append(event)
    odometer, marks = _odometer(new, seen, settings)
    published = new.last_published_at
    due = published is None or (at - published).total_seconds() >= settings.position_every_s
    publish, last = bool(events) or due, Fix(point, at, position.speed_kmh)
    published = at if publish else published
    new = replace(new, last=last, last_published_at=published, odometer_m=odometer, speed_marks=marks)
    return Step(new, tuple(events), publish, _average_kmh(new), seen.to_destination, seen.route_left_m)
