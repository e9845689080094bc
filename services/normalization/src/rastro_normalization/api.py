"""The shipment read API: one shipment with its timeline, and a cursor-paginated list."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response

from rastro_events import Status
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, require_scope, tenant_scope
from rastro_normalization.adapters.repository import load_shipment
from rastro_normalization.domain.carriers import resolve_carrier
from rastro_normalization.domain.services import canonical_service
from rastro_normalization.fleet.repository import load_position

__all__ = ["LANGUAGES", "router"]

router = APIRouter(tags=["shipments"])
LANGUAGES = ("pt-BR", "en", "es", "fr")
"""Languages of ``description`` (``Accept-Language``); pt-BR when none of them is asked for."""


@router.get("/v1/shipments/{tracking_number}", summary="A shipment: status, substatus, timeline, latest ETA")
async def get_shipment(
    request: Request,
    response: Response,
    tracking_number: str,
    principal: Principal = require_scope("shipments:read"),
    tenant: str | None = Query(default=None, description="operator keys only"),
    accept_language: str | None = Header(default=None),
) -> dict[str, Any]:
    tenant_id = _one_tenant(principal, tenant)
    async with request.app.state.runtime.pool.acquire() as conn:
        found = await load_shipment(conn, tenant_id, tracking_number)
        position = await load_position(conn, tenant_id, tracking_number) if found else None
    if found is None:
        raise ProblemError(404, f"No shipment {tracking_number!r}.", type_="not-found")
    shipment, row, extras = found
    lang = _language(accept_language)
    response.headers["Content-Language"] = lang
    timeline = [
        {
            "event_id": e.event_id,
            "occurred_at": e.occurred_at.isoformat(),
            "occurred_at_utc": _utc(e.occurred_at),
            "status": e.status.value,
            "substatus": e.substatus,
            "carrier": e.carrier,
            "status_code": e.status_code,
            "service": e.service,
            "description": _describe(extras[e.event_id]["descriptions"], lang) or e.description,
            "carrier_description": e.description,
            "location": {"city": e.location.city, "state": e.location.state, "country": e.location.country}
            if e.location
            else None,
            "withdrawn": e.withdrawn,
        }
        for e in shipment.timeline
    ]
    return {
        "tracking_number": shipment.tracking_number,
        "carrier": row["carrier"],
        "service": row["service"],
        "status": shipment.status.value,
        "substatus": shipment.substatus,
        "order_id": row["order_id"],
        "origin": _json(row["origin"]),
        "destination": _json(row["destination"]),
        "promised_date": row["promised_date"].isoformat() if row["promised_date"] else None,
        "created_at": _iso(shipment.created_at),
        "shipped_at": _iso(shipment.shipped_at),
        "delivered_at": _iso(shipment.delivered_at),
        "status_since": _iso(shipment.updated_at),
        "updated_at": row["updated_at"].isoformat(),
        "timeline": timeline,
        "eta": _json(row["eta"]),
        "position": position,
    }


@router.get("/v1/shipments", summary="Shipments, newest update first, cursor-paginated")
async def list_shipments(
    request: Request,
    principal: Principal = require_scope("shipments:read"),
    tenant: str | None = Query(default=None, description="operator keys only"),
    status: Status | None = None,
    carrier: str | None = None,
    service: str | None = Query(default=None, description="canonical id (sedex_10) or a known alias"),
    updated_since: datetime | None = None,
    q: str | None = Query(default=None, min_length=1, max_length=64, description="tracking number prefix"),
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = None,
) -> dict[str, Any]:
    tenant_id = _one_tenant(principal, tenant)
    after = _decode_cursor(cursor) if cursor else None
    carrier_id = (resolve_carrier(carrier) or carrier.strip().lower()) if carrier else None
    # The list is ordered by (updated_at, tracking_number), unique per tenant: ties in updated_at
    # still page without skipping or repeating a shipment.
    rows = await request.app.state.runtime.pool.fetch(
        "SELECT tracking_number, carrier, service, status, substatus, updated_at, eta FROM shipments"
        " WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR carrier = $3)"
        " AND ($4::timestamptz IS NULL OR updated_at >= $4)"
        " AND ($5::timestamptz IS NULL OR (updated_at, tracking_number) < ($5, $6))"
        " AND ($8::text IS NULL OR service = $8) AND ($9::text IS NULL OR tracking_number LIKE $9)"
        " ORDER BY updated_at DESC, tracking_number DESC LIMIT $7",
        tenant_id,
        status.value if status else None,
        carrier_id,
        updated_since,
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
        canonical_service(service, carrier_id) if service else None,
        _prefix_pattern(q) if q else None,
    )
    items = [
        {
            "tracking_number": r["tracking_number"],
            "carrier": r["carrier"],
            "service": r["service"],
            "status": r["status"],
            "substatus": r["substatus"],
            "updated_at": r["updated_at"].isoformat(),
            "eta": _json(r["eta"]),
        }
        for r in rows[:limit]
    ]
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def _one_tenant(principal: Principal, tenant: str | None) -> str:
    tenant_id = tenant_scope(principal, tenant)
    if tenant_id is None:
        raise ProblemError(422, "Operator keys must name the tenant: ?tenant=<id>.", type_="tenant-required")
    return tenant_id


def _language(header: str | None) -> str:
    """The best of ``LANGUAGES`` for an ``Accept-Language`` header (q-values honoured; pt-BR otherwise)."""
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        primary = tag.strip().lower().split("-")[0]
        match = next((lang for lang in LANGUAGES if lang.lower().split("-")[0] == primary), None)
        if match is not None and weight > 0:
            wanted.append((-weight, index, match))
    return min(wanted)[2] if wanted else "pt-BR"


def _describe(descriptions: dict[str, str], lang: str) -> str | None:
    return descriptions.get(lang) or descriptions.get("pt-BR")


def _prefix_pattern(prefix: str) -> str:
    escaped = prefix.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _json(value: str | None) -> Any:
    return json.loads(value) if value else None


def _encode_cursor(row: Any) -> str:
    raw = json.dumps([row["updated_at"].isoformat(), row["tracking_number"]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        updated_at, tracking = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(updated_at), str(tracking)
    except (ValueError, TypeError):
        raise ProblemError(422, "The cursor is not valid.", type_="invalid-cursor") from None
