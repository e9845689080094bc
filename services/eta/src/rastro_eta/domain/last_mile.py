"""Last mile (own fleet): from a vehicle's position to an arrival time in minutes, not a date.

The geofence processor tells us, every few minutes of recorded time, how far an own-fleet shipment
still is from its destination and how fast its vehicle has recently gone. With ``t`` the position's
``recorded_at`` ("now" is the position's time, never the wall clock, as for day-level predictions):

    distance = route_remaining_m                   along the planned route, when there is one
             | remaining_m × detour_factor          else the straight line, stretched to roads (1.3)
             | 0                                    inside the destination's geofence
    speed    = clamp(speed_kmh, min_speed, max_speed)                         (8–80 km/h)
    minutes  = distance / speed + handling_minutes                            (+5 min at the door)
    expected_at = t + minutes
    promise_at  = t + minutes × promise_factor                                (1.5: a P90-like bound)

- The recent average includes stops (deliveries to other recipients, traffic lights), so the vehicle's
  other stops are already in it; there is no separate per-stop time, only one handling time for this
  shipment's own door. The floor keeps a parked vehicle from yielding an infinite ETA (and stands for
  the crawl of city traffic); the ceiling keeps a highway burst from promising 50 km in minutes.
- The promise is not a calibrated quantile yet (no positions have been learned from): the expected
  time stretched by ``promise_factor``, documented as P90-like until deliveries with positions exist.
- No distance (the destination is not located and the vehicle is not inside it): no estimate.

Confidence says how far the estimate can be trusted, from the data behind it:
``low`` when the position was already stale when handled (more than ``stale_minutes``) or the
vehicle stands still (speed at or below the floor: the floor is a guess); ``high`` when the distance
is along the planned route (or the vehicle is inside the destination), the speed was not clamped and
the estimate agrees, within ``consistent_minutes``, with the last one published (a first estimate has
nothing to agree with); ``medium`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from rastro_eta.domain.clock import Clock
from rastro_eta.domain.prediction import Confidence
from rastro_eta.domain.shipment import ShipmentFacts
from rastro_events import EtaPredicted, Lane, ShipmentPosition, Status

__all__ = [
    "LAST_MILE_LEVEL",
    "LAST_MILE_MODEL",
    "LAST_MILE_STATUSES",
    "LastMileEstimate",
    "LastMileParameters",
    "confidence_of",
    "estimate_last_mile",
    "last_mile_event",
    "refines",
    "worth_publishing",
]

LAST_MILE_MODEL = "last-mile-1"
LAST_MILE_LEVEL = "last_mile"
# A vehicle may be bringing the shipment to its recipient in these states: a position of its vehicle is
# itself the news that it is on its way (the status change that says so, e.g. the geofence's departure,
# may come after the first positions), and a route deviation (exception) does not stop the trip. A
# failed attempt, a pickup point or anything final means the next arrival is not this trip: positions
# then say nothing about delivery, and the day-level prediction stands.
LAST_MILE_STATUSES = frozenset(
    {Status.PENDING, Status.INFO_RECEIVED, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.EXCEPTION}
)
DistanceSource = Literal["route", "straight_line", "inside"]


@dataclass(frozen=True)
class LastMileParameters:
    detour_factor: float = 1.3
    """Road distance over straight-line distance, when the shipment has no planned route."""
    min_speed_kmh: float = 8.0
    max_speed_kmh: float = 80.0
    handling_minutes: float = 5.0
    """Parking, finding the door, handing over: added to every estimate (alone, inside the geofence)."""
    promise_factor: float = 1.5
    republish_minutes: float = 2.0
    """Publish again only when the expected arrival moved by more than this."""
    stale_minutes: float = 10.0
    consistent_minutes: float = 5.0

    def __post_init__(self) -> None:
        if self.detour_factor < 1:
            raise ValueError("the detour factor is at least 1 (roads are never shorter than the line)")
        if not 0 < self.min_speed_kmh <= self.max_speed_kmh:
            raise ValueError("speeds must satisfy 0 < min ≤ max")
        if self.promise_factor < 1:
            raise ValueError("the promise factor is at least 1")
        if min(self.handling_minutes, self.republish_minutes, self.stale_minutes) < 0:
            raise ValueError("minutes may not be negative")

    @property
    def version(self) -> str:
        """The algorithm and the parameters that shape its numbers, like the day-level model's."""
        return (
            f"{LAST_MILE_MODEL}.d{self.detour_factor:g}.v{self.min_speed_kmh:g}-{self.max_speed_kmh:g}"
            f".h{self.handling_minutes:g}.p{self.promise_factor:g}"
        )


@dataclass(frozen=True)
class LastMileEstimate:
    position_at: datetime
    expected_at: datetime
    promise_at: datetime
    minutes: float
    """From the position's time to the expected arrival."""
    remaining_m: int
    """The distance the estimate used: along the route, or the straight line × the detour factor."""
    speed_kmh: float
    """The speed the estimate used (clamped)."""
    distance_source: DistanceSource
    speed_clamped: bool


def refines(status: Status) -> bool:
    """Whether positions refine this shipment's ETA (a vehicle is bringing it)."""
    return status in LAST_MILE_STATUSES


def _distance(position: ShipmentPosition, p: LastMileParameters) -> tuple[int, DistanceSource] | None:
    if position.inside_destination:
        return 0, "inside"
    if position.route_remaining_m is not None:
        return position.route_remaining_m, "route"
    if position.remaining_m is not None:
        return round(position.remaining_m * p.detour_factor), "straight_line"
    return None


def estimate_last_mile(position: ShipmentPosition, p: LastMileParameters) -> LastMileEstimate | None:
    """The arrival estimate at ``position``; None when it says nothing about the distance left."""
    found = _distance(position, p)
    if found is None:
        return None
    distance_m, source = found
    speed = min(max(position.speed_kmh, p.min_speed_kmh), p.max_speed_kmh)
    minutes = distance_m / 1000 / speed * 60 + p.handling_minutes
    at = position.recorded_at.astimezone(UTC)
    return LastMileEstimate(
        position_at=at,
        expected_at=at + timedelta(minutes=minutes),
        promise_at=at + timedelta(minutes=minutes * p.promise_factor),
        minutes=minutes,
        remaining_m=distance_m,
        speed_kmh=speed,
        distance_source=source,
        speed_clamped=speed != position.speed_kmh,
    )


def confidence_of(
    estimate: LastMileEstimate,
    p: LastMileParameters,
    *,
    handled_at: datetime,
    published_expected_at: datetime | None,
) -> Confidence:
    """How far ``estimate`` can be trusted: fresh data, a known route, a real speed, a steady answer."""
    stale = handled_at - estimate.position_at > timedelta(minutes=p.stale_minutes)
    standing = estimate.distance_source != "inside" and estimate.speed_kmh <= p.min_speed_kmh
    if stale or standing:
        return "low"
    steady = published_expected_at is not None and abs(
        estimate.expected_at - published_expected_at
    ) <= timedelta(minutes=p.consistent_minutes)
    if estimate.distance_source != "straight_line" and not estimate.speed_clamped and steady:
        return "high"
    return "medium"


def worth_publishing(
    published_expected_at: datetime | None, estimate: LastMileEstimate, p: LastMileParameters
) -> bool:
    """The first last-mile ETA, or one whose arrival moved by more than ``republish_minutes``."""
    if published_expected_at is None:
        return True
    return abs(estimate.expected_at - published_expected_at) > timedelta(minutes=p.republish_minutes)


def last_mile_event(
    shipment: ShipmentFacts,
    estimate: LastMileEstimate,
    *,
    clock: Clock,
    confidence: Confidence,
    positions_seen: int,
    predicted_at: datetime,
    model_version: str,
) -> EtaPredicted:
    """The ``EtaPredicted`` of a last-mile estimate; its dates are calendar days in the model's zone."""
    a = shipment.attributes
    return EtaPredicted(
        tracking_number=shipment.tracking_number,
        expected_date=clock.local_date(estimate.expected_at),
        promise_date=clock.local_date(estimate.promise_at),
        lane=Lane(carrier=a.carrier, service=a.service, origin=a.origin, destination=a.destination),
        model_version=model_version,
        sample_size=positions_seen,
        predicted_at=predicted_at,
        milestone=shipment.status,
        confidence=confidence,
        lane_level=LAST_MILE_LEVEL,
        basis_milestone="out_for_delivery",
        expected_at=estimate.expected_at,
        remaining_m=estimate.remaining_m,
    )
