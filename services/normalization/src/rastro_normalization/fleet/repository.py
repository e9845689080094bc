"""Postgres access of the fleet tables (migration 0006): assignments, routes, geofence state, settings."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from rastro_normalization.domain.geofence import FenceSettings

__all__ = [
    "SETTING_FIELDS",
    "assign_vehicle",
    "carried_by",
    "delete_route",
    "fence_settings",
    "fetch_route",
    "load_position",
    "put_fence_settings",
    "put_route",
    "save_states",
]

SETTING_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FenceSettings))
_TERMINAL = ("delivered", "returned", "cancelled")


async def assign_vehicle(
    conn: Any, tenant_id: str, tracking_number: str, vehicle_id: str, route_id: str | None
) -> None:
    """The shipment is (now) carried by ``vehicle_id``: a new vehicle starts a fresh geofence state."""
    previous = await conn.fetchval(
        "INSERT INTO fleet_assignments AS a (tenant_id, tracking_number, vehicle_id, route_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, tracking_number) DO UPDATE"
        " SET vehicle_id = excluded.vehicle_id, route_id = coalesce(excluded.route_id, a.route_id),"
        " assigned_at = now() RETURNING (SELECT vehicle_id FROM geofence_state g"
        " WHERE g.tenant_id = $1 AND g.tracking_number = $2)",
        tenant_id,
        tracking_number,
        vehicle_id,
        route_id,
    )
    if previous is not None and previous != vehicle_id:
        await conn.execute(
            "DELETE FROM geofence_state WHERE tenant_id = $1 AND tracking_number = $2",
            tenant_id,
            tracking_number,
        )


async def carried_by(conn: Any, tenant_id: str, vehicles: Sequence[str]) -> list[dict[str, Any]]:
    """The unfinished shipments ``vehicles`` carry, with their geometry, carrier and geofence state."""
    rows = await conn.fetch(
        "SELECT a.vehicle_id, a.tracking_number, a.route_id, s.carrier, s.origin, s.destination, g.state,"
        " r.points AS route, r.corridor_m"
        " FROM fleet_assignments a"
        " JOIN shipments s ON s.tenant_id = a.tenant_id AND s.tracking_number = a.tracking_number"
        " LEFT JOIN geofence_state g ON g.tenant_id = a.tenant_id AND g.tracking_number = a.tracking_number"
        " LEFT JOIN fleet_routes r ON r.tenant_id = a.tenant_id AND r.route_id = a.route_id"
        " WHERE a.tenant_id = $1 AND a.vehicle_id = ANY($2::text[]) AND s.status <> ALL($3::text[])"
        " ORDER BY a.vehicle_id, a.tracking_number",
        tenant_id,
        list(vehicles),
        list(_TERMINAL),
    )
    return [dict(r) for r in rows]


async def save_states(
    conn: Any, tenant_id: str, states: Sequence[tuple[str, str, dict[str, Any], dict[str, Any]]]
) -> None:
    """(tracking number, vehicle, state JSON, position JSON) of each shipment moved, in one statement."""
    if not states:
        return
    await conn.execute(
        "INSERT INTO geofence_state AS g (tenant_id, tracking_number, vehicle_id, state, position)"
        " SELECT $1, t, v, s::jsonb, p::jsonb"
        " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS x(t, v, s, p)"
        # not for a shipment handed to another vehicle meanwhile (its state starts afresh)
        " WHERE EXISTS (SELECT 1 FROM fleet_assignments a"
        " WHERE a.tenant_id = $1 AND a.tracking_number = x.t AND a.vehicle_id = x.v)"
        " ON CONFLICT (tenant_id, tracking_number) DO UPDATE SET vehicle_id = excluded.vehicle_id,"
        " state = excluded.state, position = excluded.position, updated_at = now()",
        tenant_id,
        [t for t, _, _, _ in states],
        [v for _, v, _, _ in states],
        [json.dumps(s) for _, _, s, _ in states],
        [json.dumps(p) for _, _, _, p in states],
    )


async def load_position(conn: Any, tenant_id: str, tracking_number: str) -> dict[str, Any] | None:
    """The shipment's last known position (``GET /v1/shipments/{n}`` shows it), or None."""
    row = await conn.fetchrow(
        "SELECT a.vehicle_id, a.route_id, g.position FROM fleet_assignments a"
        " LEFT JOIN geofence_state g ON g.tenant_id = a.tenant_id AND g.tracking_number = a.tracking_number"
        " WHERE a.tenant_id = $1 AND a.tracking_number = $2",
        tenant_id,
        tracking_number,
    )
    if row is None:
        return None
    position = json.loads(row["position"]) if row["position"] else None
    return {"vehicle_id": row["vehicle_id"], "route_id": row["route_id"], "last": position}


async def put_route(
    conn: Any, tenant_id: str, route_id: str, points: list[list[float]], corridor_m: float | None
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO fleet_routes (tenant_id, route_id, points, corridor_m) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (tenant_id, route_id) DO UPDATE SET points = excluded.points,"
        " corridor_m = excluded.corridor_m, updated_at = now() RETURNING *",
        tenant_id,
        route_id,
        json.dumps(points),
        corridor_m,
    )
    return _route(row)


async def fetch_route(conn: Any, tenant_id: str, route_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM fleet_routes WHERE tenant_id = $1 AND route_id = $2", tenant_id, route_id
    )
    return _route(row) if row else None


async def delete_route(conn: Any, tenant_id: str, route_id: str) -> bool:
    result = await conn.execute(
        "DELETE FROM fleet_routes WHERE tenant_id = $1 AND route_id = $2", tenant_id, route_id
    )
    return str(result).endswith(" 1")


async def fence_settings(conn: Any, tenant_id: str, defaults: FenceSettings) -> FenceSettings:
    """The tenant's geofence settings: its overrides on the service's defaults."""
    stored = await conn.fetchval("SELECT settings FROM geofence_settings WHERE tenant_id = $1", tenant_id)
    overrides = json.loads(stored) if stored else {}
    return dataclasses.replace(defaults, **{k: v for k, v in overrides.items() if k in SETTING_FIELDS})


async def put_fence_settings(conn: Any, tenant_id: str, overrides: dict[str, Any]) -> None:
    if overrides:
        await conn.execute(
            "INSERT INTO geofence_settings (tenant_id, settings) VALUES ($1, $2) ON CONFLICT (tenant_id)"
            " DO UPDATE SET settings = excluded.settings, updated_at = now()",
            tenant_id,
            json.dumps(overrides),
        )
    else:
        await conn.execute("DELETE FROM geofence_settings WHERE tenant_id = $1", tenant_id)


def _route(row: Any) -> dict[str, Any]:
    return {
        "route_id": row["route_id"],
        "points": json.loads(row["points"]),
        "corridor_m": row["corridor_m"],
        "updated_at": row["updated_at"].isoformat(),
    }
