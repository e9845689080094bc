"""The KPI page's data: what to ask the services for each chart, and the series it plots.

Charts come from normalization's ``GET /v1/kpis`` (delivery KPIs; ``from``/``to`` are whole UTC days,
both included) and eta's ``GET /v1/eta/kpis`` and ``GET /v1/eta/kpis/errors``. The trend per carrier
asks ``/v1/kpis?group_by=carrier`` once per period (the last 14 days, 8 weeks or 6 months), so it
needs nothing beyond the documented parameters. A call that fails leaves its chart empty, with the
service's reason beside it: the page still renders.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from rastro_cli.console.upstream import Answer, ServiceApi

__all__ = ["BUCKETS", "Bucket", "Chart", "KpiCharts", "Period", "buckets", "load_kpi_charts"]

Period = Literal["day", "week", "month"]
BUCKETS: dict[str, int] = {"day": 14, "week": 8, "month": 6}


@dataclass(frozen=True)
class Bucket:
    label: str
    first: date
    last: date


def _start(day: date, period: Period) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def buckets(period: Period, today: date, count: int | None = None) -> list[Bucket]:
    """The last ``count`` calendar periods up to ``today``, oldest first; the current one ends today."""
    found: list[Bucket] = []
    end = today
    for _ in range(count or BUCKETS[period]):
        first = _start(end, period)
        label = first.strftime("%d %b") if period != "month" else first.strftime("%b %Y")
        found.append(Bucket(label, first, end))
        end = first - timedelta(days=1)
    return found[::-1]


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    kind: Literal["line", "bar"]
    x: list[str]
    series: dict[str, list[float | None]]
    y_label: str
    percent: bool = False
    problem: str | None = None
    """Why the chart is empty, when a service did not give its data."""
    hint: str | None = None
    """What the chart needs, shown when it has nothing to plot and no service failed."""

    @property
    def points(self) -> int:
        return sum(1 for values in self.series.values() for v in values if v is not None)


@dataclass(frozen=True)
class KpiCharts:
    period: Period
    charts: list[Chart] = field(default_factory=list)


def _problem(answers: list[Answer]) -> str | None:
    failed = next((a for a in answers if not a.ok), None)
    if failed is None:
        return None
    if failed.status == 404:
        return "the service does not serve this report (404)"
    return failed.detail or f"HTTP {failed.status}"


def _by_carrier(answer: Answer, field_name: str) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for item in answer.items():
        value = item.get(field_name)
        values[_label(item.get("key"))] = float(value) if isinstance(value, int | float) else None
    return values


def _label(key: object) -> str:
    """A group's name on a chart; a null key is the shipments that lack the attribute."""
    return "(unknown)" if key is None else str(key)


def _trend(
    name: str, title: str, periods: list[Bucket], answers: list[Answer], field_name: str, hint: str
) -> Chart:
    rows = [_by_carrier(a, field_name) for a in answers]
    carriers = sorted({c for row in rows for c in row})
    percent = field_name.endswith("_rate")
    # A carrier missing from a period had no shipments then: a count of 0, but a rate of nothing.
    missing = [None if percent or not a.ok else 0.0 for a in answers]
    series = {c: [row.get(c, gap) for row, gap in zip(rows, missing, strict=True)] for c in carriers}
    y_label = "share of deliveries" if percent else "shipments"
    x = [b.label for b in periods]
    return Chart(name, title, "line", x, series, y_label, percent, _problem(answers), hint)


def _weighted_by_carrier(answer: Answer, field_name: str, weight: str) -> dict[str, float | None]:
    """One value per carrier where an operator's answer has one row per tenant and carrier."""
    sums: dict[str, list[float]] = {}
    for item in answer.items():
        value, count = item.get(field_name), item.get(weight)
        if isinstance(value, int | float) and isinstance(count, int | float) and count > 0:
            totals = sums.setdefault(_label(item.get("key")), [0.0, 0.0])
            totals[0], totals[1] = totals[0] + value * count, totals[1] + count
    return {key: total / count for key, (total, count) in sums.items()}


def _on_time(delivery: Answer, eta: Answer) -> Chart:
    ours = _by_carrier(delivery, "on_time_rate")
    promise = _weighted_by_carrier(eta, "on_time_share", "deliveries")
    carriers = sorted(set(ours) | set(promise))
    series: dict[str, list[float | None]] = {
        "by the promised date (order)": [ours.get(c) for c in carriers],
        "by Rastro's promise date (ETA P90)": [promise.get(c) for c in carriers],
    }
    problem, hint = _problem([delivery, eta]), "needs delivered shipments"
    title = "On-time rate by carrier"
    return Chart("on-time", title, "bar", carriers, series, "on-time share", True, problem, hint)


def _eta_errors(answer: Answer) -> Chart:
    """A histogram per carrier on one day axis; an operator's rows per tenant add up. The ends of the
    axis (``±clamp_days``) count every error beyond them."""
    counts: dict[str, dict[int, float]] = {}
    for item in answer.items():
        per_day = counts.setdefault(str(item.get("carrier")), {})
        for b in item.get("buckets") or []:
            if isinstance(b, dict) and isinstance(b.get("error_days"), int | float):
                day = int(b["error_days"])
                per_day[day] = per_day.get(day, 0.0) + float(b.get("count") or 0)
    seen = {d for per_day in counts.values() for d in per_day}
    # A histogram's axis has no holes, and shows at least a few days either side of "on the day".
    days = list(range(min(seen | {-3}), max(seen | {3}) + 1)) if seen else []
    series: dict[str, list[float | None]] = {
        c: [per.get(d, 0.0) for d in days] for c, per in sorted(counts.items())
    }
    clamp = answer.body.get("clamp_days") if answer.ok and isinstance(answer.body, dict) else None
    x = [_error_label(d, clamp) for d in days]
    title = "ETA error distribution (delivered − expected, days)"
    hint = "needs deliveries that had a prediction"
    return Chart("eta-errors", title, "bar", x, series, "deliveries", False, _problem([answer]), hint)


def _error_label(day: int, clamp: Any) -> str:
    if isinstance(clamp, int) and clamp > 0 and abs(day) >= clamp:
        return f"≤{day:+d}" if day < 0 else f"≥{day:+d}"
    return f"{day:+d}" if day else "0"


async def load_kpi_charts(
    api: ServiceApi, key: str, tenant: dict[str, str], period: Period, today: date
) -> KpiCharts:
    periods = buckets(period, today)
    span = {"from": periods[0].first.isoformat(), "to": today.isoformat()}

    def kpis(params: dict[str, Any]) -> Any:
        return api.call("GET", "normalization", "/v1/kpis", key, {**tenant, "group_by": "carrier", **params})

    per_period, whole, eta, errors = await asyncio.gather(
        asyncio.gather(*(kpis({"from": b.first.isoformat(), "to": b.last.isoformat()}) for b in periods)),
        kpis(span),
        api.call("GET", "eta", "/v1/eta/kpis", key, {**tenant, **span, "group_by": "carrier"}),
        api.call("GET", "eta", "/v1/eta/kpis/errors", key, {**tenant, **span}),
    )
    answers = list(per_period)
    return KpiCharts(
        period,
        [
            _trend(
                "trend", f"Shipments per carrier, by {period}", periods, answers, "shipments", "no shipments"
            ),
            _trend(
                "on-time-trend",
                f"On-time rate per carrier, by {period}",
                periods,
                answers,
                "on_time_rate",
                "needs deliveries with a promised date (order events carry it)",
            ),
            _on_time(whole, eta),
            _eta_errors(errors),
        ],
    )
