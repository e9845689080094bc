"""The read API of eta (DESIGN §11): a shipment's prediction with its basis, and lane statistics.

A shipment's ETA is the last-mile ETA (own fleet: ``expected_at``, ``remaining_m``,
``minutes_remaining``, ``last_mile``) while one is current — estimated from a position recorded within
``RASTRO_ETA_LAST_MILE_FRESH_MINUTES`` and the shipment still on its way — else the day-level prediction
last published. A day-level prediction published later (a scan) therefore does not hide a current
last-mile ETA; once positions stop or the shipment is delivered, the day-level one shows again.

Both are tenant-scoped: a tenant key reads its own tenant only; the operator key names one with
``?tenant=`` (or, for the lane list, sees every tenant's lanes, each labelled with its tenant).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from rastro_eta.adapters.last_mile_store import CurrentLastMile, LastMileStore
from rastro_eta.adapters.repository import (
    KPI_GROUPS,
    EtaErrorCount,
    EtaRepository,
    Kpi,
    PublishedPrediction,
    TenantLane,
)
from rastro_eta.domain.lanes import LaneLevel
from rastro_eta.domain.prediction import ModelParameters
from rastro_eta.domain.transit import SECONDS_PER_DAY, Segment
from rastro_events import Lane, Status
from rastro_kit.auth import Principal
from rastro_kit.http import PROBLEM_JSON, ProblemError, require_scope, tenant_scope

__all__ = [
    "EtaBasis",
    "EtaErrorList",
    "KpiList",
    "LaneList",
    "LaneStatistics",
    "LastMileBasis",
    "ShipmentEta",
    "build_router",
]

Reader = Annotated[Principal, require_scope("shipments:read")]
TenantParam = Annotated[str | None, Query(description="operator key only: the tenant to read")]
FromParam = Annotated[date | None, Query(alias="from", description="first delivery date included")]
ToParam = Annotated[date | None, Query(description="last delivery date included")]
KpiGroup = Literal["tenant", "carrier", "lane", "service", "period"]
KpiPeriod = Literal["day", "week", "month"]
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
    milestone: Segment
    weight: float
    confidence: Literal["high", "medium", "low"]
    promise_quantile: float


class LastMileBasis(BaseModel):
    model_version: str
    confidence: Literal["high", "medium", "low"]
    position_at: datetime = Field(description="when the position behind the newest estimate was recorded")
    positions_seen: int = Field(description="positions of the shipment handled so far")
    vehicle_id: str
    speed_kmh: float = Field(description="the vehicle's speed the estimate used (clamped)")


class ShipmentEta(BaseModel):
    tenant: str
    tracking_number: str
    expected_date: date
    promise_date: date
    milestone: Status
    predicted_at: datetime
    event_id: str
    basis: EtaBasis = Field(description="the day-level prediction's basis (beneath a last-mile ETA too)")
    expected_at: datetime | None = Field(default=None, description="last mile: the expected arrival time")
    promise_at: datetime | None = Field(default=None, description="last mile: arrival by then (P90-like)")
    remaining_m: int | None = Field(default=None, description="last mile: road distance left, metres")
    minutes_remaining: int | None = Field(
        default=None, description="last mile: whole minutes from this answer to expected_at (0 when due)"
    )
    last_mile: LastMileBasis | None = Field(
        default=None, description="set while a last-mile ETA is current: then it gives the dates above"
    )


class EtaHistory(BaseModel):
    tracking_number: str
    items: list[ShipmentEta] = Field(description="every prediction published for the shipment, newest first")


class SegmentStatistics(BaseModel):
    sample_size: int
    weight: float
    p50_days: float
    promise_days: float


class LaneStatistics(BaseModel):
    tenant: str
    key: str
    level: LaneLevel
    lane: Lane
    sample_size: int
    """Deliveries learned (undecayed)."""
    p50_days: float | None
    """From pickup (else from creation): decayed quantiles, in the model's clock days."""
    p90_days: float | None
    segments: dict[Segment, SegmentStatistics]


class LaneList(BaseModel):
    items: list[LaneStatistics]
    next_cursor: str | None = None


class KpiItem(BaseModel):
    tenant: str
    key: str
    deliveries: int
    eta_precision: float
    on_time_share: float
    expected_mae_days: float
    shop_on_time_share: float | None


class KpiList(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    group_by: KpiGroup
    period: KpiPeriod | None = Field(default=None, description="the bucket of group_by=period")
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    items: list[KpiItem]
    next_cursor: str | None = None


class EtaErrorBucket(BaseModel):
    error_days: int = Field(description="delivered date - expected date; the ends count everything beyond")
    count: int


class EtaErrorSeries(BaseModel):
    tenant: str
    carrier: str
    buckets: list[EtaErrorBucket]


class EtaErrorList(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    clamp_days: int
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    items: list[EtaErrorSeries]


def _window(first: date | None, last: date | None) -> None:
    if first is not None and last is not None and first > last:
        raise ProblemError(422, f"from ({first}) is after to ({last})", type_="invalid-window")


def _error_series(counts: list[EtaErrorCount]) -> list[EtaErrorSeries]:
    series: dict[tuple[str, str], list[EtaErrorBucket]] = {}
    for c in counts:  # ordered by tenant, carrier, error
        series.setdefault((c.tenant_id, c.carrier), []).append(
            EtaErrorBucket(error_days=c.error_days, count=c.count)
        )
    return [EtaErrorSeries(tenant=t, carrier=carrier, buckets=b) for (t, carrier), b in series.items()]


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
        milestone=p.segment,
        weight=round(p.weight, 3),
        confidence=p.confidence,
        promise_quantile=p.promise_quantile,
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


def _with_last_mile(
    eta: ShipmentEta, state: CurrentLastMile, parameters: ModelParameters, now: datetime
) -> ShipmentEta:
    """``eta`` with the current last-mile ETA in front (dates in the model's zone, like the event's)."""
    expected_at, promise_at = state.expected_at, state.promise_at
    clock = parameters.clock
    return eta.model_copy(
        update={
            "expected_date": clock.local_date(expected_at),
            "promise_date": clock.local_date(promise_at),
            "milestone": state.milestone,
            "predicted_at": state.predicted_at,
            "event_id": state.event_id,
            "expected_at": expected_at,
            "promise_at": promise_at,
            "remaining_m": state.remaining_m,
            "minutes_remaining": max(0, int((expected_at - now) / timedelta(minutes=1))),
            "last_mile": LastMileBasis(
                model_version=state.model_version,
                confidence=state.confidence,
                position_at=state.estimated_from,
                positions_seen=state.positions_seen,
                vehicle_id=state.vehicle_id,
                speed_kmh=state.speed_kmh,
            ),
        }
    )


def _lane_statistics(lane: TenantLane, parameters: ModelParameters, now: datetime) -> LaneStatistics:
    state = lane.state
    at = now.timestamp() / SECONDS_PER_DAY
    segments = {
        segment: SegmentStatistics(
            sample_size=q.count,
            weight=round(q.weight_at(at), 3),
            p50_days=round(q.quantile(parameters.expected_quantile) or 0.0, 3),
            promise_days=round(q.quantile(parameters.promise_quantile) or 0.0, 3),
        )
        for segment, q in sorted(state.segments.items())
    }
    main = segments.get(Segment.SHIPPED) or segments.get(Segment.CREATED)
    return LaneStatistics(
        tenant=lane.tenant_id,
        key=state.key.text,
        level=state.key.level,
        lane=state.key.to_lane(),
        sample_size=state.deliveries,
        p50_days=main.p50_days if main else None,
        p90_days=main.promise_days if main else None,
        segments=segments,
    )


def _kpi_item(kpi: Kpi) -> KpiItem:
    return KpiItem(
        tenant=kpi.tenant_id,
        key=kpi.key,
        deliveries=kpi.deliveries,
        eta_precision=round(kpi.eta_precision, 4),
        on_time_share=round(kpi.on_time_share, 4),
        expected_mae_days=round(kpi.expected_mae_days, 3),
        shop_on_time_share=None if kpi.shop_on_time_share is None else round(kpi.shop_on_time_share, 4),
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


def build_router(
    parameters: ModelParameters, last_mile_fresh: timedelta = timedelta(minutes=30)
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["eta"])

    @router.get(
        "/shipments/{tracking_number}/eta",
        response_model=ShipmentEta,
        summary="The ETA of a shipment: its current last-mile ETA (own fleet), else the prediction last "
        "published, with its basis",
        responses={404: _PROBLEM, 409: _PROBLEM},
    )
    async def shipment_eta(
        request: Request,
        principal: Reader,
        tracking_number: Annotated[str, Path(min_length=1, max_length=64)],
        tenant: TenantParam = None,
    ) -> ShipmentEta:
        pool = request.app.state.runtime.pool
        found = await EtaRepository(pool).published_predictions(
            tenant_scope(principal, tenant), tracking_number
        )
        published = _only(found, tracking_number)
        eta = _shipment_eta(published)
        now = datetime.now(UTC)
        last_mile = await LastMileStore(pool).current(
            published.tenant_id, tracking_number, now - last_mile_fresh
        )
        return eta if last_mile is None else _with_last_mile(eta, last_mile, parameters, now)

    @router.get(
        "/shipments/{tracking_number}/eta/history",
        response_model=EtaHistory,
        summary="Every prediction published for a shipment, newest first (how its ETA moved)",
        responses={404: _PROBLEM, 409: _PROBLEM},
    )
    async def shipment_eta_history(
        request: Request,
        principal: Reader,
        tracking_number: Annotated[str, Path(min_length=1, max_length=64)],
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        tenant: TenantParam = None,
    ) -> EtaHistory:
        repo = EtaRepository(request.app.state.runtime.pool)
        found = await repo.published_predictions(tenant_scope(principal, tenant), tracking_number)
        current = _only(found, tracking_number)
        history = await repo.prediction_history(current.tenant_id, tracking_number, limit)
        return EtaHistory(tracking_number=tracking_number, items=[_shipment_eta(p) for p in history])

    @router.get(
        "/eta/lanes",
        response_model=LaneList,
        summary="Lane statistics: deliveries learned, decayed weight and quantiles per milestone",
    )
    async def lanes(request: Request, principal: Reader, tenant: TenantParam = None) -> LaneList:
        repo = EtaRepository(request.app.state.runtime.pool)
        found = await repo.all_lanes(tenant_scope(principal, tenant))
        now = datetime.now(UTC)
        return LaneList(items=[_lane_statistics(lane, parameters, now) for lane in found])

    @router.get(
        "/eta/kpis",
        response_model=KpiList,
        summary="ETA precision and on-time-vs-promise of delivered shipments, per tenant, carrier, lane, "
        "service or period of delivery",
        responses={422: _PROBLEM},
    )
    async def kpis(
        request: Request,
        principal: Reader,
        group_by: Annotated[KpiGroup, Query()] = "tenant",
        period: Annotated[KpiPeriod, Query(description="bucket of group_by=period")] = "week",
        from_: FromParam = None,
        to: ToParam = None,
        tenant: TenantParam = None,
    ) -> KpiList:
        assert group_by in KPI_GROUPS
        _window(from_, to)
        repo = EtaRepository(request.app.state.runtime.pool)
        found = await repo.kpis(
            tenant_scope(principal, tenant), group_by, period=period, first=from_, last=to
        )
        return KpiList.model_validate(
            {
                "group_by": group_by,
                "period": period if group_by == "period" else None,
                "from": from_,
                "to": to,
                "items": [_kpi_item(k) for k in found],
            }
        )

    @router.get(
        "/eta/kpis/errors",
        response_model=EtaErrorList,
        summary="Histogram of delivered date - expected date (days) per carrier, for a chart",
        responses={422: _PROBLEM},
    )
    async def eta_errors(
        request: Request,
        principal: Reader,
        from_: FromParam = None,
        to: ToParam = None,
        clamp_days: Annotated[int, Query(ge=1, le=60, description="errors beyond count at ±clamp_days")] = 15,
        tenant: TenantParam = None,
    ) -> EtaErrorList:
        _window(from_, to)
        repo = EtaRepository(request.app.state.runtime.pool)
        found = await repo.eta_errors(
            tenant_scope(principal, tenant), first=from_, last=to, clamp_days=clamp_days
        )
        return EtaErrorList.model_validate(
            {"clamp_days": clamp_days, "from": from_, "to": to, "items": _error_series(found)}
        )

    return router
