"""The read API of eta (DESIGN §11): a shipment's prediction with its basis, and lane statistics.

Both are tenant-scoped: a tenant key reads its own tenant only; the operator key names one with
``?tenant=`` (or, for the lane list, sees every tenant's lanes, each labelled with its tenant).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from rastro_eta.adapters.repository import EtaRepository, LaneSamples, PublishedPrediction
from rastro_eta.domain.lanes import LaneLevel
from rastro_eta.domain.prediction import ModelParameters
from rastro_eta.domain.quantiles import lane_stats
from rastro_events import Lane, Status
from rastro_kit.auth import Principal
from rastro_kit.http import PROBLEM_JSON, ProblemError, require_scope, tenant_scope

__all__ = ["EtaBasis", "LaneList", "LaneStatistics", "ShipmentEta", "build_router"]

Reader = Annotated[Principal, require_scope("shipments:read")]
TenantParam = Annotated[str | None, Query(description="operator key only: the tenant to read")]
_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}


class EtaBasis(BaseModel):
    lane: Lane
    lane_key: str
    level: LaneLevel
    source: Literal["lane", "default"]
    sample_size: int
    model_version: str
    started_at: datetime
    expected_days: float
    promise_days: float


class ShipmentEta(BaseModel):
    tenant: str
    tracking_number: str
    expected_date: date
    promise_date: date
    milestone: Status
    predicted_at: datetime
    event_id: str
    basis: EtaBasis


class LaneStatistics(BaseModel):
    tenant: str
    key: str
    level: LaneLevel
    lane: Lane
    sample_size: int
    p50_days: float
    p90_days: float


class LaneList(BaseModel):
    items: list[LaneStatistics]
    next_cursor: str | None = None


def _shipment_eta(published: PublishedPrediction) -> ShipmentEta:
    p = published.prediction
    basis = EtaBasis(
        lane=p.lane.to_lane(),
        lane_key=p.lane.text,
        level=p.lane.level,
        source="default" if p.from_default else "lane",
        sample_size=p.sample_size,
        model_version=p.model_version,
        started_at=p.started_at,
        expected_days=p.expected_days,
        promise_days=p.promise_days,
    )
    return ShipmentEta(
        tenant=published.tenant_id,
        tracking_number=p.tracking_number,
        expected_date=p.expected_date,
        promise_date=p.promise_date,
        milestone=p.milestone,
        predicted_at=published.predicted_at,
        event_id=published.event_id,
        basis=basis,
    )


def _lane_statistics(lane: LaneSamples) -> LaneStatistics | None:
    stats = lane_stats(lane.key, lane.transit_days)
    if stats is None:
        return None
    return LaneStatistics(
        tenant=lane.tenant_id,
        key=lane.key.text,
        level=lane.key.level,
        lane=lane.key.to_lane(),
        sample_size=stats.sample_size,
        p50_days=stats.p50_days,
        p90_days=stats.p90_days,
    )


def _only(found: list[PublishedPrediction], tracking_number: str) -> PublishedPrediction:
    if not found:
        raise ProblemError(404, f"No prediction for shipment {tracking_number!r}.", type_="not-found")
    if len(found) > 1:  # only an operator reading without ?tenant= can meet several
        raise ProblemError(
            409,
            "This tracking number exists in several tenants; name one with ?tenant=.",
            type_="ambiguous-tenant",
            tenants=[f.tenant_id for f in found],
        )
    return found[0]


def build_router(parameters: ModelParameters) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["eta"])

    @router.get(
        "/shipments/{tracking_number}/eta",
        response_model=ShipmentEta,
        summary="The prediction last published for a shipment, with its basis",
        responses={404: _PROBLEM, 409: _PROBLEM},
    )
    async def shipment_eta(
        request: Request,
        principal: Reader,
        tracking_number: Annotated[str, Path(min_length=1, max_length=64)],
        tenant: TenantParam = None,
    ) -> ShipmentEta:
        repo = EtaRepository(request.app.state.runtime.pool)
        found = await repo.published_predictions(tenant_scope(principal, tenant), tracking_number)
        return _shipment_eta(_only(found, tracking_number))

    @router.get(
        "/eta/lanes",
        response_model=LaneList,
        summary="Lane statistics: sample size, P50 and P90 transit days, per lane and level",
    )
    async def lanes(request: Request, principal: Reader, tenant: TenantParam = None) -> LaneList:
        repo = EtaRepository(request.app.state.runtime.pool)
        found = await repo.lanes(tenant_scope(principal, tenant), parameters.window)
        return LaneList(items=[item for lane in found if (item := _lane_statistics(lane)) is not None])

    return router
