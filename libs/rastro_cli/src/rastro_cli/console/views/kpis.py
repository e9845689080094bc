"""KPI charts: trend per carrier, on-time rate, ETA error distribution (see ``console.kpi_data``).

The page comes back at once; its charts load into it with htmx (and again every minute), since they
take several service calls and a matplotlib render each.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast

from starlette.responses import Response

from rastro_cli.console.charts import render_chart
from rastro_cli.console.kpi_data import BUCKETS, Period, load_kpi_charts
from rastro_cli.console.visit import Visit

__all__ = ["kpi_charts", "kpis_page"]


def _period(visit: Visit) -> Period:
    wanted = visit.request.query_params.get("period", "day")
    return cast(Period, wanted if wanted in BUCKETS else "day")


async def kpis_page(visit: Visit) -> Response:
    return visit.render("kpis.html", period=_period(visit), periods=list(BUCKETS))


async def kpi_charts(visit: Visit) -> Response:
    today = datetime.now(UTC).date()
    data = await load_kpi_charts(visit.api, visit.key, visit.tenant_params(), _period(visit), today)
    svgs = await asyncio.gather(*(render_chart(chart) for chart in data.charts))
    return visit.render("_kpi_charts.html", charts=list(zip(data.charts, svgs, strict=True)))
