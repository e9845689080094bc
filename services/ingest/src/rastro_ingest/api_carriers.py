"""Carrier connections and carrier pushes.

A tenant registers a connection per carrier account (scope ``admin``: it holds carrier credentials):
the credentials ingest polls with, the polling settings, and a webhook secret shown once. Carriers push
to ``POST /v1/carriers/{carrier}/webhook?connection=<id>``, authenticated by that secret — never by an
API key — and each carrier event becomes a ``rastro.tracking.raw.v1`` event with a deterministic id.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, HttpUrl

from rastro_events import new_event_id
from rastro_ingest.adapters.carriers.connections import (
    Connection,
    delete_connection,
    fetch_connection,
    fetch_connections,
    insert_connection,
)
from rastro_ingest.adapters.carriers.models import ParseSettings
from rastro_ingest.adapters.carriers.registry import CARRIERS
from rastro_ingest.adapters.carriers.signature import verify_push
from rastro_ingest.adapters.repository import tenant_exists
from rastro_ingest.polling.tracked import record_carrier_events, register_numbers
from rastro_kit import audit
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, require_scope, tenant_scope

__all__ = ["router"]

router = APIRouter(tags=["carriers"])
CarrierName = Literal["correios", "generic"]
EXAMPLE_PUSH = {
    "objetos": [
        {
            "codObjeto": "AA123456785BR",
            "tipoPostal": {"sigla": "AA", "descricao": "ETIQUETA LOGICA SEDEX", "categoria": "SEDEX"},
            "eventos": [
                {
                    "codigo": "BDE",
                    "tipo": "01",
                    "dtHrCriado": "2026-11-23T14:05:11",
                    "descricao": "Objeto entregue ao destinatário",
                    "unidade": {
                        "tipo": "Unidade de Distribuição",
                        "endereco": {"cidade": "SAO PAULO", "uf": "SP"},
                    },
                }
            ],
        }
    ]
}


class PollingIn(BaseModel):
    enabled: bool = True
    interval_s: int = Field(default=3600, ge=1, le=7 * 86400, description="shipments in transit")
    delivered_interval_s: int = Field(default=86400, ge=1, le=30 * 86400, description="delivered shipments")
    delivered_days: int = Field(default=3, ge=0, le=90, description="keep polling delivered ones this long")
    expire_after_days: int = Field(default=30, ge=1, le=365, description="stop after this long without news")
    batch_size: int = Field(default=50, ge=1, le=500, description="tracking numbers per carrier request")


class ConnectionIn(BaseModel):
    carrier: CarrierName
    name: str | None = Field(default=None, max_length=100, examples=["correios-contrato-123"])
    credentials: dict[str, str] = Field(
        default_factory=dict,
        max_length=10,
        description="correios: `token`, or `username` + `access_code` (+ `posting_card`)",
        examples=[{"username": "empresa", "access_code": "…", "posting_card": "0067599079"}],
    )
    base_url: HttpUrl | None = Field(
        default=None, description="the carrier API's address (operator keys or development mode only)"
    )
    polling: PollingIn = Field(default_factory=PollingIn)


class NumbersIn(BaseModel):
    tracking_numbers: list[str] = Field(min_length=1, max_length=1000, examples=[["AA123456785BR"]])


def _acting_tenant(principal: Principal, requested: str | None) -> str:
    if principal.tenant_id is not None:  # a 3PL key may also name a tenant it acts for (docs/roles.md)
        if requested is not None and not principal.acts_for(requested):
            raise ProblemError(403, "This key cannot act for another tenant.", type_="forbidden")
        return requested or principal.tenant_id
    if not requested:
        raise ProblemError(422, "Operator keys must name the tenant: ?tenant=<id>.", type_="tenant-required")
    return requested


@router.post(
    "/v1/carriers/connections", status_code=201, summary="Connect a carrier account (secret shown once)"
)
async def create_connection(
    request: Request,
    body: ConnectionIn,
    principal: Principal = require_scope("carriers:manage"),
    tenant: str | None = Query(default=None, description="operator keys only: the tenant"),
) -> Any:
    runtime = request.app.state.runtime
    tenant_id = _acting_tenant(principal, tenant)
    if body.base_url is not None and not (principal.is_operator or runtime.settings.development):
        raise ProblemError(
            403, "Only an operator key may set base_url: ingest would call that address.", type_="forbidden"
        )
    pollable = CARRIERS[body.carrier].client is not None
    values = {
        "id": f"cc_{new_event_id().lower()}",
        "tenant_id": tenant_id,
        "carrier": body.carrier,
        "name": body.name,
        "base_url": str(body.base_url).rstrip("/") if body.base_url else None,
        "credentials": body.credentials,
        "webhook_secret": f"csec_{secrets.token_urlsafe(32)}",
        "polling_enabled": body.polling.enabled and pollable,
        "poll_interval_s": body.polling.interval_s,
        "delivered_poll_interval_s": body.polling.delivered_interval_s,
        "delivered_poll_days": body.polling.delivered_days,
        "expire_after_days": body.polling.expire_after_days,
        "batch_size": body.polling.batch_size,
    }
    async with runtime.pool.acquire() as conn, conn.transaction():
        if not await tenant_exists(conn, tenant_id):
            raise ProblemError(404, "Not found.")
        connection = await insert_connection(conn, values)
        summary = {"carrier": body.carrier, "name": body.name, "base_url": values["base_url"]}
        await audit.record(
            conn, principal, request, "carrier_connection.create", connection.id, summary, tenant_id=tenant_id
        )
    return {**connection.public(), "webhook_secret": connection.webhook_secret}


@router.get("/v1/carriers/connections", summary="List carrier connections (never their secrets)")
async def list_connections(
    request: Request,
    principal: Principal = require_scope("carriers:manage"),
    tenant: str | None = Query(default=None, description="operator keys: one tenant only"),
) -> Any:
    async with request.app.state.runtime.pool.acquire() as conn:
        items = await fetch_connections(conn, tenant_scope(principal, tenant))
    return {"items": [c.public() for c in items], "next_cursor": None}


@router.get("/v1/carriers/connections/{connection_id}", summary="One carrier connection")
async def get_connection(
    request: Request, connection_id: str, principal: Principal = require_scope("carriers:manage")
) -> Any:
    return (await _owned(request, principal, connection_id)).public()


@router.delete(
    "/v1/carriers/connections/{connection_id}", status_code=204, summary="Disconnect; polling stops"
)
async def remove_connection(
    request: Request, connection_id: str, principal: Principal = require_scope("carriers:manage")
) -> Response:
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        if not await delete_connection(conn, connection_id, principal.tenant_id):
            raise ProblemError(404, "Not found.")
        await audit.record(conn, principal, request, "carrier_connection.delete", connection_id)
    return Response(status_code=204)


@router.post(
    "/v1/carriers/connections/{connection_id}/shipments",
    status_code=202,
    summary="Poll these tracking numbers (shipments named by accepted events are polled anyway)",
)
async def track_numbers(
    request: Request,
    connection_id: str,
    body: NumbersIn,
    principal: Principal = require_scope("events:write"),
) -> Any:
    connection = await _owned(request, principal, connection_id)
    async with request.app.state.runtime.pool.acquire() as conn:
        added = await register_numbers(conn, connection, body.tracking_numbers)
    return {"tracked": added, "already_tracked": len(set(body.tracking_numbers)) - added}


async def _owned(request: Request, principal: Principal, connection_id: str) -> Connection:
    async with request.app.state.runtime.pool.acquire() as conn:
        connection = await fetch_connection(conn, connection_id)
    if connection is None or tenant_scope(principal, connection.tenant_id) != connection.tenant_id:
        raise ProblemError(404, "Not found.")
    return connection


@router.post(
    "/v1/carriers/{carrier}/webhook",
    status_code=202,
    summary="Receive a carrier push",
    description=(
        "Authenticated by the connection's webhook secret, not an API key: name the connection with "
        "`?connection=<id>` (or the `X-Rastro-Connection` header) and send either "
        "`X-Rastro-Signature: sha256=<hex HMAC-SHA256 of the raw body>` or `X-Rastro-Webhook-Secret: "
        "<secret>`. `correios`: the SRO Rastro REST shape (`objetos[].eventos[]`); `generic`: "
        '`{"carrier": …, "events": [tracking events]}`. Each carrier event becomes one '
        "`rastro.tracking.raw.v1` event whose id is derived from (carrier, number, code, time, place), "
        "so a repeated push changes nothing (`new: false`)."
    ),
    responses={
        401: {"description": "unknown connection or bad signature"},
        404: {"description": "no such carrier"},
        422: {"description": "no usable event"},
    },
)
async def receive_push(
    request: Request,
    carrier: str,
    connection: str | None = Query(default=None, description="the carrier connection id"),
    connection_header: str | None = Header(default=None, alias="X-Rastro-Connection"),
    traceparent: str | None = Header(default=None),
    _: Any = Body(default=None, openapi_examples={"correios": {"value": EXAMPLE_PUSH}}),
) -> Any:
    adapter = CARRIERS.get(carrier)
    if adapter is None:
        raise ProblemError(
            404, f"No carrier {carrier!r}; known: {sorted(CARRIERS)}.", type_="unknown-carrier"
        )
    body = await request.body()
    target = await _authenticated(request, carrier, connection or connection_header, body)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProblemError(400, "The body is not JSON.", type_="invalid-json") from None
    shipments, messages = adapter.parse(payload, ParseSettings(carrier))
    notes = [m.public() for m in messages]
    if not any(s.events for s in shipments) and messages:
        raise ProblemError(
            422, "The push holds no usable carrier event.", type_="validation-error", messages=notes
        )
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        recorded = await record_carrier_events(
            conn, target, shipments, now=datetime.now(UTC), polled=False, traceparent=traceparent
        )
    events = [r.public() for r in recorded]
    return {"accepted": len(events), "new": sum(r.new for r in recorded), "events": events, "messages": notes}


async def _authenticated(
    request: Request, carrier: str, connection_id: str | None, body: bytes
) -> Connection:
    """The connection this push belongs to; 401 alike for an unknown connection and a bad signature,
    so a caller learns nothing about which connection ids exist."""
    target = None
    if connection_id:
        async with request.app.state.runtime.pool.acquire() as conn:
            target = await fetch_connection(conn, connection_id)
    if (
        target is None
        or target.carrier != carrier
        or not verify_push(target.webhook_secret, body, request.headers)
    ):
        raise ProblemError(
            401,
            "Unknown connection or invalid signature: send ?connection=<id> and "
            "X-Rastro-Signature: sha256=<HMAC-SHA256 of the body> (or X-Rastro-Webhook-Secret).",
            type_="invalid-signature",
        )
    return target
