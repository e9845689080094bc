"""Integration health: the four signals, refreshed every few seconds (see ``console.health``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from rastro_cli.console.health import gather_health
from rastro_cli.console.visit import Visit

__all__ = ["health_page", "health_panel"]


async def _report(visit: Visit) -> dict[str, Any]:
    report = await gather_health(visit.api, visit.state.history, visit.key, visit.tenant_params())
    return {"report": report}


async def health_page(visit: Visit) -> Response:
    return visit.render("health.html", **(await _report(visit)))


async def health_panel(visit: Visit) -> Response:
    return visit.render("_health_panel.html", **(await _report(visit)))
