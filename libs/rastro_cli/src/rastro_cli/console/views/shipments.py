"""Shipment search, and one shipment: its timeline (raw carrier codes beside the normalized status)
and its ETA. The shipment page re-reads its panel every few seconds, so a replayed dead letter or a
late carrier event shows up without a reload."""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from rastro_cli.console.upstream import Answer, segment
from rastro_cli.console.visit import Visit
from rastro_events import Status

__all__ = ["STATUSES", "shipment_page", "shipment_panel", "shipments_page"]

STATUSES = tuple(status.value for status in Status)  # the filter's choices, in taxonomy order


async def shipments_page(visit: Visit) -> Response:
    query = visit.request.query_params
    filters = {k: query.get(k, "").strip() for k in ("q", "status", "carrier", "cursor")}
    answer = None
    if not visit.needs_tenant:
        params = {**visit.tenant_params(), **filters, "limit": "50"}
        params["q"] = params["q"].upper()  # tracking numbers are upper case; a prefix search is exact
        answer = await visit.api.call("GET", "normalization", "/v1/shipments", visit.key, params)
    return visit.render("shipments.html", filters=filters, answer=answer, statuses=STATUSES)


async def _shipment(visit: Visit, tracking_number: str) -> tuple[Answer, Answer]:
    """The shipment, and its ETA history (every published prediction, newest first)."""
    path = f"/v1/shipments/{segment(tracking_number)}"
    shipment, eta = await asyncio.gather(
        visit.api.call("GET", "normalization", path, visit.key, visit.tenant_params()),
        visit.api.call("GET", "eta", path + "/eta/history", visit.key, visit.tenant_params()),
    )
    return shipment, eta


async def shipment_page(visit: Visit) -> Response:
    tracking_number = visit.request.path_params["tracking_number"]
    if visit.needs_tenant:
        return visit.render("shipment.html", tracking_number=tracking_number, shipment=None, eta=None)
    shipment, eta = await _shipment(visit, tracking_number)
    status = 404 if shipment.status == 404 else 200
    return visit.render("shipment.html", status, tracking_number=tracking_number, shipment=shipment, eta=eta)


async def shipment_panel(visit: Visit) -> Response:
    """Always 200: htmx swaps only successful answers, and "not found yet" is worth showing."""
    tracking_number = visit.request.path_params["tracking_number"]
    shipment, eta = await _shipment(visit, tracking_number)
    return visit.render("_shipment_panel.html", tracking_number=tracking_number, shipment=shipment, eta=eta)
