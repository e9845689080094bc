"""``GET /v1/kpis``: delivery KPIs of a tenant's shipments, grouped by tenant, carrier, service, lane,
region, sales channel or period, over a window of days (definitions in docs/kpis.md).

A tenant key reads its own tenant only (another one named in ``?tenant=`` is 404); an operator key
reads the tenant it names, or every tenant together (``group_by=tenant`` then gives one row each).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from rastro_events.payloads import Money
from rastro_kit.auth import Principal
from rastro_kit.http import PROBLEM_JSON, ProblemError, require_scope, tenant_scope
from rastro_normalization.domain.carriers import resolve_carrier
from rastro_normalization.domain.services import canonical_service
from rastro_normalization.kpis.definitions import merge_keys
from rastro_normalization.kpis.repository import KpiQuery, kpi_counts
from rastro_normalization.kpis.windows import GroupBy, Period, WindowError, period_starts, resolve_window

__all__ = ["KpiItem", "KpiReport", "router"]

router = APIRouter(tags=["kpis"])
Reader = Annotated[Principal, require_scope("shipments:read")]


class KpiItem(BaseModel):
    key: str | None = Field(
        description="the group: tenant, carrier, service, lane (SP/RJ), region (RJ), "
        "channel, or the first day of the period; null where shipments lack it"
    )
    shipments: int = Field(description="created cohort: shipments whose first event is in the window")
    delivered: int = Field(description="delivered cohort: shipments delivered in the window")
    otif: float | None = Field(description="delivered on time and in full / delivered with a promised date")
    on_time_rate: float | None = Field(description="delivered on or before the promised date / with one")
    avg_transit_days: float | None = Field(description="mean days from carrier pickup to delivery")
    first_attempt_rate: float | None = Field(
        description="delivered with no failed attempt before / delivered"
    )
    redelivery_rate: float | None = Field(
        description="delivered after at least one failed attempt / delivered"
    )
    exception_rate: float | None = Field(description="shipments that ever entered exception / shipments")
    returned_rate: float | None = Field(
        description="shipments that entered returning or returned / shipments"
    )
    cost_per_delivery: Money | None = Field(
        description="mean shipping cost of the delivered ones that have one"
    )


class KpiReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    group_by: GroupBy
    period: Period
    from_: date = Field(alias="from", description="first day of the window (UTC), included")
    to: date = Field(description="last day of the window (UTC), included")
    items: list[KpiItem]


@router.get(
    "/v1/kpis",
    response_model=KpiReport,
    summary="Delivery KPIs (OTIF, on time, transit, first attempt, exceptions, returns, cost) per group",
    responses={404: {"content": {PROBLEM_JSON: {}}}, 422: {"content": {PROBLEM_JSON: {}}}},
)
async def kpis(
    request: Request,
    principal: Reader,
    group_by: GroupBy = "tenant",
    period: Annotated[Period, Query(description="bucket of group_by=period")] = "week",
    from_: Annotated[date | None, Query(alias="from", description="default: 89 days before to")] = None,
    to: Annotated[date | None, Query(description="default: today (UTC)")] = None,
    carrier: str | None = None,
    service: Annotated[str | None, Query(description="canonical id (sedex_10) or a known alias")] = None,
    channel: Annotated[str | None, Query(description="sales channel, as sent")] = None,
    tenant: Annotated[str | None, Query(description="operator keys only")] = None,
) -> KpiReport:
    tenant_id = tenant_scope(principal, tenant)
    try:
        window = resolve_window(from_, to, datetime.now(UTC).date())
    except WindowError as exc:
        raise ProblemError(422, str(exc), type_="invalid-window") from None
    carrier_id = (resolve_carrier(carrier) or carrier.strip().lower()) if carrier else None
    query = KpiQuery(
        tenant_id=tenant_id,
        group_by=group_by,
        period=period,
        window=window,
        carrier=carrier_id,
        service=canonical_service(service, carrier_id) if service else None,
        channel=channel.strip() if channel else None,
    )
    async with request.app.state.runtime.pool.acquire() as conn:
        created, delivered = await kpi_counts(conn, query)
    buckets = [d.isoformat() for d in period_starts(window, period)] if group_by == "period" else []
    rows = merge_keys(created, delivered, buckets)
    return KpiReport.model_validate(
        {
            "group_by": group_by,
            "period": period,
            "from": window.first,
            "to": window.last,
            "items": [r.to_json() for r in rows],
        }
    )
