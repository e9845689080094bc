"""``/v1/routes`` (planned routes of own-fleet deliveries) and ``/v1/geofence/settings`` (a tenant's radii
and thresholds). Reading needs ``shipments:read``. Writing a route needs ``telemetry:write`` (the ``fleet``
role's; ``events:write`` includes it); changing the settings needs ``mappings:manage``, the scope of a
tenant's other normalization settings. An operator key names the tenant with ``?tenant=``."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, require_scope, tenant_scope
from rastro_normalization.fleet.repository import (
    SETTING_FIELDS,
    delete_route,
    fence_settings,
    fetch_route,
    put_fence_settings,
    put_route,
)
from rastro_normalization.mappings.api import MANAGE_SCOPE

__all__ = ["router"]

router = APIRouter(tags=["fleet"])
Reader = Annotated[Principal, require_scope("shipments:read")]
Manager = Annotated[Principal, require_scope(MANAGE_SCOPE)]
Planner = Annotated[Principal, require_scope("telemetry:write")]
"""routes come from the tenant's route planner or telematics platform (``events:write`` includes it)"""
MAX_ROUTE_POINTS = 10_000


Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class RouteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: list[tuple[Latitude, Longitude]] = Field(
        min_length=2, max_length=MAX_ROUTE_POINTS, description="the planned polyline: [[lat, lon], ...]"
    )
    corridor_m: float | None = Field(
        default=None, gt=0, le=50_000, description="a deviation beyond this; default: the tenant's setting"
    )


class FenceSettingsIn(BaseModel):
    """Overrides of the service's defaults; a field left out (or null) takes the default."""

    model_config = ConfigDict(extra="forbid")
    arrival_radius_m: float | None = Field(default=None, gt=0, le=50_000)
    departure_radius_m: float | None = Field(default=None, gt=0, le=50_000)
    long_stop_s: float | None = Field(default=None, gt=0, le=86_400)
    stop_speed_kmh: float | None = Field(default=None, gt=0, le=50)
    stop_radius_m: float | None = Field(default=None, gt=0, le=5_000)
    corridor_m: float | None = Field(default=None, gt=0, le=50_000)
    deviation_confirm: int | None = Field(default=None, ge=1, le=100)
    position_every_s: float | None = Field(default=None, ge=0, le=86_400)
    speed_window_s: float | None = Field(default=None, gt=0, le=86_400)
    max_accuracy_m: float | None = Field(default=None, gt=0, le=10_000)


def _tenant(principal: Principal, tenant: str | None) -> str:
    tenant_id = tenant_scope(principal, tenant)
    if tenant_id is None:
        raise ProblemError(422, "Operator keys must name the tenant: ?tenant=<id>.", type_="tenant-required")
    return tenant_id


@router.put("/v1/routes/{route_id}", summary="Create or replace a planned route (its corridor)")
async def put_planned_route(
    request: Request,
    route_id: str,
    body: RouteIn,
    principal: Planner,
    tenant: str | None = Query(default=None),
) -> dict[str, Any]:
    if not 0 < len(route_id) <= 64:
        raise ProblemError(422, "A route id has 1 to 64 characters.", type_="validation-error")
    async with request.app.state.runtime.pool.acquire() as conn:
        points = [[lat, lon] for lat, lon in body.points]
        return await put_route(conn, _tenant(principal, tenant), route_id, points, body.corridor_m)


@router.get("/v1/routes/{route_id}", summary="A planned route")
async def get_planned_route(
    request: Request, route_id: str, principal: Reader, tenant: str | None = Query(default=None)
) -> dict[str, Any]:
    async with request.app.state.runtime.pool.acquire() as conn:
        route = await fetch_route(conn, _tenant(principal, tenant), route_id)
    if route is None:
        raise ProblemError(404, f"No route {route_id!r}.", type_="not-found")
    return route


@router.delete("/v1/routes/{route_id}", status_code=204, summary="Delete a planned route")
async def delete_planned_route(
    request: Request, route_id: str, principal: Planner, tenant: str | None = Query(default=None)
) -> Response:
    async with request.app.state.runtime.pool.acquire() as conn:
        if not await delete_route(conn, _tenant(principal, tenant), route_id):
            raise ProblemError(404, f"No route {route_id!r}.", type_="not-found")
    return Response(status_code=204)


@router.get("/v1/geofence/settings", summary="The tenant's geofence settings (defaults with its overrides)")
async def get_geofence_settings(
    request: Request, principal: Reader, tenant: str | None = Query(default=None)
) -> dict[str, Any]:
    runtime = request.app.state.runtime
    async with runtime.pool.acquire() as conn:
        settings = await fence_settings(conn, _tenant(principal, tenant), runtime.settings.fence_settings())
    return dataclasses.asdict(settings)


@router.put("/v1/geofence/settings", summary="Override the geofence settings for the tenant")
async def put_geofence_settings(
    request: Request, body: FenceSettingsIn, principal: Manager, tenant: str | None = Query(default=None)
) -> dict[str, Any]:
    runtime = request.app.state.runtime
    tenant_id = _tenant(principal, tenant)
    overrides = {k: v for k, v in body.model_dump().items() if v is not None and k in SETTING_FIELDS}
    async with runtime.pool.acquire() as conn:
        await put_fence_settings(conn, tenant_id, overrides)
        settings = await fence_settings(conn, tenant_id, runtime.settings.fence_settings())
    return dataclasses.asdict(settings)
