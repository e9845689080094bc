"""The geofence processor: a consumer of ``rastro.telemetry.v1`` (group ``normalization-geofence``).

Each position of a vehicle is stepped through the geofence state of every unfinished shipment the vehicle
carries (``fleet_assignments``, from ``order.shipped``'s ``vehicle_id``). What a step raises becomes a
``tracking.raw`` event with a ``GEOFENCE-*`` code (carrier: the shipment's), so normalization maps it
through the standard geofence table, folds it into the shipment and publishes it like any carrier's
event: ``out_for_delivery.nearby``, ``in_transit.departed_origin``, ``in_transit.long_stop``,
``exception.route_deviation`` (and ``in_transit.in_route`` when back on route). Every few minutes of
recorded time, and with each of those events, a ``shipment.position`` event tells ETA where the shipment
is, what is left to its destination and how fast the vehicle has been going.

Geometry comes from the shipment: the destination's (and origin's) ``latitude``/``longitude`` when
given, else the centroid of its postal code's 5-digit prefix (``RASTRO_NORMALIZATION_POSTAL_CENTROIDS_FILE``,
the Olist geolocation table by default). A planned route is the tenant's (``PUT /v1/routes/{id}``).

Events raised here have ids derived from the position's event id, the shipment and the kind, so a
redelivered position (the inbox drops it anyway) or a replayed one publishes nothing new.
"""

from __future__ import annotations

import asyncio
import csv
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from rastro_events import Envelope, RawTrackingEvent, ShipmentPosition, TelemetryPosition
from rastro_events.payloads import Location
from rastro_kit.handler_context import HandlerContext
from rastro_kit.logs import get_logger
from rastro_normalization.domain.geo import Point, centroid_for, centroids_from_rows
from rastro_normalization.domain.geofence import (
    FenceEvent,
    FenceSettings,
    FenceState,
    GpsFix,
    ShipmentGeometry,
    Step,
    step,
)
from rastro_normalization.fleet.repository import carried_by, fence_settings, save_states

__all__ = ["CODES", "GeofenceProcessor", "load_centroids", "shipment_position"]

CODES: dict[str, str] = {
    "arrived": "GEOFENCE-ARRIVED",
    "departed_origin": "GEOFENCE-DEPARTED",
    "long_stop": "GEOFENCE-LONG-STOP",
    "route_deviation": "GEOFENCE-DEVIATION",
    "back_on_route": "GEOFENCE-BACK-ON-ROUTE",
}
FLEET_CARRIER = "frota-propria"
"""the carrier of geofence events for a shipment whose carrier is not known"""
_NAMESPACE = uuid.UUID("0c9f5d1e-4b7a-5f60-8e2d-3a1b9c7e6f42")  # fixed forever: ids depend on it
log = get_logger(__name__)


@cache
def load_centroids(path: str) -> dict[str, Point]:
    """The postal-prefix centroids of a geolocation CSV (Olist's columns), {} when there is no file."""
    file = Path(path).expanduser()
    if not file.is_file():
        log.warning("postal_centroids_missing", path=str(file))
        return {}
    with file.open(encoding="utf-8", newline="") as fh:
        centroids = centroids_from_rows(csv.DictReader(fh))
    log.info("postal_centroids_loaded", path=str(file), prefixes=len(centroids))
    return centroids


class GeofenceProcessor:
    """The handler of ``telemetry.position`` events, in the consumer's transaction: ``batch`` on the fast
    path (a partition batch at once), the instance itself per record on the isolated path."""

    def __init__(self, defaults: FenceSettings, centroids_file: str | None) -> None:
        self.defaults = defaults
        self.centroids_file = centroids_file
        self._centroids: dict[str, Point] | None = None

    async def centroids(self) -> dict[str, Point]:
        if self._centroids is None:
            loaded = (
                await asyncio.to_thread(load_centroids, self.centroids_file) if self.centroids_file else {}
            )
            self._centroids = loaded
        return self._centroids

    async def __call__(self, ctx: HandlerContext, envelope: Envelope, position: TelemetryPosition) -> None:
        """One position (the consumer's isolated path): the batch of one."""
        await self.batch(ctx.conn, [ctx])

    async def batch(self, conn: Any, contexts: Sequence[HandlerContext]) -> None:
        """A partition batch's positions, in order: per tenant, one read of the vehicles' shipments and
        one write of their states, however many positions (the fast path's batch handler)."""
        by_tenant: dict[str, list[HandlerContext]] = {}
        for ctx in contexts:
            by_tenant.setdefault(ctx.tenant_id, []).append(ctx)
        centroids = await self.centroids()
        for tenant, ctxs in by_tenant.items():
            vehicles = sorted({ctx.payload.vehicle_id for ctx in ctxs})
            rows = await carried_by(conn, tenant, vehicles)
            if not rows:
                continue  # vehicles carrying nothing (yet): positions before order.shipped are not kept
            settings = await fence_settings(conn, tenant, self.defaults)
            fleet: dict[str, list[_Followed]] = {}
            for row in rows:
                fleet.setdefault(row["vehicle_id"], []).append(_followed(row, settings, centroids))
            for ctx in ctxs:
                for shipment in fleet.get(ctx.payload.vehicle_id, ()):
                    await self._step(ctx, shipment)
            moved = [s for followed in fleet.values() for s in followed if s.view is not None]
            await save_states(
                conn, tenant, [(s.tracking, s.vehicle, s.state.to_json(), s.view) for s in moved]
            )

    async def _step(self, ctx: HandlerContext, shipment: _Followed) -> None:
        position, envelope = ctx.payload, ctx.envelope
        assert envelope is not None
        moved = step(shipment.state, shipment.geometry, position, shipment.settings)
        if moved.state == shipment.state:
            return  # stale, duplicate or discarded fix
        tracking, carrier = shipment.tracking, shipment.carrier
        for event in moved.events:
            await ctx.emit(
                _raw_event(tracking, carrier, event), event_id=_event_id(envelope.id, tracking, event.kind)
            )
        if moved.publish_position:
            await ctx.emit(
                shipment_position(tracking, position.vehicle_id, position, moved),
                event_id=_event_id(envelope.id, tracking, "position"),
            )
        shipment.state = moved.state
        shipment.view = _position_view(position, moved, shipment.geometry)
        if moved.events:
            log.info(
                "geofence_events",
                tenant=ctx.tenant_id,
                key=tracking,
                event_id=envelope.id,
                kinds=[e.kind for e in moved.events],
            )


@dataclass
class _Followed:
    """One shipment a vehicle carries, as the batch steps it: loaded once, saved once."""

    tracking: str
    vehicle: str
    carrier: str
    geometry: ShipmentGeometry
    settings: FenceSettings
    state: FenceState
    view: dict[str, Any] | None = None
    """the position to show, once a fix of this batch moved the state"""


def _followed(row: Any, settings: FenceSettings, centroids: dict[str, Point]) -> _Followed:
    corridor = row["corridor_m"]
    return _Followed(
        tracking=row["tracking_number"],
        vehicle=row["vehicle_id"],
        carrier=row["carrier"] or FLEET_CARRIER,
        geometry=_geometry(row, centroids),
        settings=settings if corridor is None else replace(settings, corridor_m=corridor),
        state=FenceState.from_json(json.loads(row["state"])) if row["state"] else FenceState(),
    )


def _geometry(shipment: dict[str, Any], centroids: dict[str, Point]) -> ShipmentGeometry:
    return ShipmentGeometry(
        destination=_place(shipment["destination"], centroids),
        origin=_place(shipment["origin"], centroids),
        route=_route(shipment["route"]) if shipment["route"] else None,
    )


@lru_cache(maxsize=1024)
def _route(stored: str) -> tuple[Point, ...]:
    """A stored route's points, parsed once: every batch of its van's positions reads the same text."""
    return tuple((p[0], p[1]) for p in json.loads(stored))


def _place(stored: str | None, centroids: dict[str, Point]) -> Point | None:
    """Where a stored location is: its coordinates, else its postal code's centroid, else None."""
    if not stored:
        return None
    place = json.loads(stored)
    if place.get("latitude") is not None and place.get("longitude") is not None:
        return (place["latitude"], place["longitude"])
    return centroid_for(centroids, place.get("postal_code"))


def _event_id(position_id: str, tracking_number: str, kind: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{position_id}\x1f{tracking_number}\x1f{kind}"))


def _raw_event(tracking_number: str, carrier: str, event: FenceEvent) -> RawTrackingEvent:
    lat, lon = event.point
    return RawTrackingEvent(
        tracking_number=tracking_number,
        carrier=carrier,
        status_code=CODES[event.kind],
        description=event.detail,
        occurred_at=event.recorded_at,
        location=Location(latitude=round(lat, 6), longitude=round(lon, 6)),
        raw={"source": "geofence", "kind": event.kind, "distance_m": event.distance_m},
    )


def shipment_position(
    tracking_number: str, vehicle_id: str, position: GpsFix, moved: Step
) -> ShipmentPosition:
    """The ``shipment.position`` a step publishes (``bench/fleet_bench.py`` scores exactly this)."""
    return ShipmentPosition(
        tracking_number=tracking_number,
        vehicle_id=vehicle_id,
        recorded_at=position.recorded_at,
        latitude=position.latitude,
        longitude=position.longitude,
        speed_kmh=round(moved.speed_kmh, 1),
        remaining_m=None if moved.remaining_m is None else round(moved.remaining_m),
        route_remaining_m=None if moved.route_remaining_m is None else round(moved.route_remaining_m),
        inside_destination=moved.state.arrived,
    )


def _position_view(position: TelemetryPosition, moved: Step, geometry: ShipmentGeometry) -> dict[str, Any]:
    """What ``GET /v1/shipments/{n}`` shows as ``position.last``."""
    return {
        "recorded_at": position.recorded_at.isoformat(),
        "latitude": position.latitude,
        "longitude": position.longitude,
        "speed_kmh": position.speed_kmh,
        "heading": position.heading,
        "recent_speed_kmh": round(moved.speed_kmh, 1),
        "remaining_m": None if moved.remaining_m is None else round(moved.remaining_m),
        "route_remaining_m": None if moved.route_remaining_m is None else round(moved.route_remaining_m),
        "destination": list(geometry.destination) if geometry.destination else None,
        "arrived": moved.state.arrived,
        "off_route": moved.state.deviated,
    }
