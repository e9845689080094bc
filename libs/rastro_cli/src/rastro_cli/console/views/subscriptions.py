"""Webhook subscriptions and their delivery attempts (status code, latency, outcome, error).

Secrets and header values are never shown: the list answer carries no secret, and only the names of
a subscription's custom headers are rendered.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from rastro_cli.console.upstream import segment
from rastro_cli.console.visit import Visit

__all__ = ["attempts_panel", "subscription_page", "subscriptions_page"]


async def subscriptions_page(visit: Visit) -> Response:
    answer = await visit.api.call(
        "GET", "notification", "/v1/subscriptions", visit.key, visit.tenant_params()
    )
    return visit.render("subscriptions.html", answer=answer)


async def _attempts(visit: Visit) -> dict[str, Any]:
    sub_id = visit.request.path_params["sub_id"]
    path = f"/v1/subscriptions/{segment(sub_id)}/attempts"
    attempts = await visit.api.call(
        "GET", "notification", path, visit.key, {**visit.tenant_params(), "limit": "50"}
    )
    return {"sub_id": sub_id, "attempts": attempts}


async def subscription_page(visit: Visit) -> Response:
    sub_id = visit.request.path_params["sub_id"]
    path = f"/v1/subscriptions/{segment(sub_id)}"
    sub = await visit.api.call("GET", "notification", path, visit.key, visit.tenant_params())
    context = await _attempts(visit)
    return visit.render("subscription.html", 404 if sub.status == 404 else 200, sub=sub, **context)


async def attempts_panel(visit: Visit) -> Response:
    return visit.render("_attempts_panel.html", **(await _attempts(visit)))
