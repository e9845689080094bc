"""The KPI counts in Postgres: one aggregate per cohort, grouped in the database.

Each cohort query reads one index range — ``shipments_kpi_created`` (tenant, created_at) or
``shipments_kpi_delivered`` (tenant, delivered_at) — bounded by the window, and looks up each of those
shipments' timeline entries by primary key to derive the per-shipment predicates of ``definitions``.
Both run in one read-only snapshot, under a statement timeout. Group keys and filters come from a
closed set; every value is a query parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rastro_normalization.kpis.definitions import NOT_IN_FULL_SUBSTATUSES, CreatedCounts, DeliveredCounts
from rastro_normalization.kpis.windows import GroupBy, KpiWindow, Period

__all__ = ["KpiQuery", "kpi_counts"]

STATEMENT_TIMEOUT = "15s"
_REGION = "nullif(upper(btrim(s.{side}->>'state')), '')"
_ORIGIN, _DESTINATION = _REGION.format(side="origin"), _REGION.format(side="destination")
# {cohort} is the timestamp the cohort is cut on; {period} the parameter holding day|week|month.
_KEYS: dict[str, str] = {
    "tenant": "s.tenant_id",
    "carrier": "s.carrier",
    "service": "s.service",
    "channel": "s.sales_channel",
    "region": _DESTINATION,
    "lane": f"CASE WHEN {_ORIGIN} IS NULL AND {_DESTINATION} IS NULL THEN NULL"
    f" ELSE coalesce({_ORIGIN}, '*') || '/' || coalesce({_DESTINATION}, '*') END",
    "period": "to_char(date_trunc({period}, s.{cohort} AT TIME ZONE 'UTC'), 'YYYY-MM-DD')",
}
_NOT_IN_FULL = "ARRAY[" + ", ".join(f"'{s}'" for s in sorted(NOT_IN_FULL_SUBSTATUSES)) + "]"
_ENTRIES = "FROM timeline_entries e WHERE e.tenant_id = s.tenant_id AND e.tracking_number = s.tracking_number"
_CREATED = f"""
SELECT {{key}} AS key, count(*) AS shipments,
       count(*) FILTER (WHERE t.exception) AS exceptions,
       count(*) FILTER (WHERE t.returned) AS returned
FROM shipments s
CROSS JOIN LATERAL (
    SELECT coalesce(bool_or(e.status = 'exception'), false) AS exception,
           coalesce(bool_or(e.status IN ('returning', 'returned')), false) AS returned
    {_ENTRIES} AND e.effect IS NULL
) t
WHERE {{where}}
GROUP BY 1
"""
_DELIVERED = f"""
SELECT {{key}} AS key, count(*) AS delivered, count(s.promised_date) AS promised,
       count(*) FILTER (WHERE t.delivered_on <= s.promised_date) AS on_time,
       count(*) FILTER (WHERE t.delivered_on <= s.promised_date AND t.in_full) AS otif,
       count(*) FILTER (WHERE NOT t.failed_before) AS first_attempt,
       count(*) FILTER (WHERE t.failed_before) AS redelivered,
       count(*) FILTER (WHERE s.delivered_at >= s.shipped_at) AS transit_count,
       coalesce(sum(extract(epoch FROM s.delivered_at - s.shipped_at))
                FILTER (WHERE s.delivered_at >= s.shipped_at), 0) / 86400 AS transit_days,
       count(s.shipping_cost_amount) AS costed,
       coalesce(sum(s.shipping_cost_amount), 0) AS cost_total,
       array_agg(DISTINCT s.shipping_cost_currency) FILTER (WHERE s.shipping_cost_amount IS NOT NULL)
           AS currencies
FROM shipments s
CROSS JOIN LATERAL (
    SELECT coalesce(bool_or(e.status = 'failed_attempt' AND e.occurred_at < s.delivered_at), false)
               AS failed_before,
           NOT coalesce(bool_or(e.status IN ('returning', 'returned') OR e.substatus = ANY({_NOT_IN_FULL})),
                        false) AS in_full,
           coalesce(min(left(e.occurred_at_local, 10))
                        FILTER (WHERE e.status = 'delivered' AND e.occurred_at = s.delivered_at)::date,
                    (s.delivered_at AT TIME ZONE 'UTC')::date) AS delivered_on
    {_ENTRIES} AND e.effect IS NULL
) t
WHERE {{where}}
GROUP BY 1
"""


@dataclass(frozen=True)
class KpiQuery:
    tenant_id: str | None  # None: every tenant (operator keys)
    group_by: GroupBy
    period: Period
    window: KpiWindow
    carrier: str | None = None
    service: str | None = None
    channel: str | None = None


class _Sql:
    """One cohort statement with its numbered parameters."""

    def __init__(self, query: KpiQuery, cohort: str) -> None:
        self.args: list[Any] = []
        where = [
            f"s.{cohort} >= {self.param(query.window.start)}",
            f"s.{cohort} < {self.param(query.window.end)}",
        ]
        for column, value in (
            ("tenant_id", query.tenant_id),
            ("carrier", query.carrier),
            ("service", query.service),
            ("sales_channel", query.channel),
        ):
            if value is not None:
                where.append(f"s.{column} = {self.param(value)}")
        period = self.param(query.period) + "::text" if query.group_by == "period" else ""
        self.key = _KEYS[query.group_by].format(period=period, cohort=cohort)
        self.where = " AND ".join(where)

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


async def kpi_counts(
    conn: Any, query: KpiQuery
) -> tuple[dict[str | None, CreatedCounts], dict[str | None, DeliveredCounts]]:
    """Per group key: the created cohort's counts and the delivered cohort's, from one snapshot."""
    created_sql, delivered_sql = _Sql(query, "created_at"), _Sql(query, "delivered_at")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
        created = await conn.fetch(
            _CREATED.format(key=created_sql.key, where=created_sql.where), *created_sql.args
        )
        delivered = await conn.fetch(
            _DELIVERED.format(key=delivered_sql.key, where=delivered_sql.where), *delivered_sql.args
        )
    return (
        {r["key"]: CreatedCounts(r["shipments"], r["exceptions"], r["returned"]) for r in created},
        {r["key"]: _delivered(r) for r in delivered},
    )


def _delivered(r: Any) -> DeliveredCounts:
    return DeliveredCounts(
        delivered=r["delivered"],
        promised=r["promised"],
        on_time=r["on_time"],
        otif=r["otif"],
        first_attempt=r["first_attempt"],
        redelivered=r["redelivered"],
        transit_count=r["transit_count"],
        transit_days=float(r["transit_days"]),
        costed=r["costed"],
        cost_total=Decimal(r["cost_total"]),
        currencies=tuple(sorted(r["currencies"] or ())),
    )
