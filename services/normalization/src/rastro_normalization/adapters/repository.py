"""Postgres access for the shipment read model (schema ``normalization``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rastro_events import Status
from rastro_normalization.domain.state_machine import Shipment, build_shipment, new_shipment
from rastro_normalization.domain.timeline import Place, TimelineEntry

__all__ = [
    "ShipmentFacts",
    "insert_entry",
    "load_shipment",
    "lock_shipment",
    "save_shipment",
]


@dataclass(frozen=True)
class ShipmentFacts:
    """What we know of a shipment beyond its timeline; None leaves the stored value as it is."""

    carrier: str | None = None
    service: str | None = None
    order_id: str | None = None
    origin: dict[str, Any] | None = None
    destination: dict[str, Any] | None = None
    promised_date: date | None = None


async def lock_shipment(conn: Any, tenant_id: str, tracking_number: str) -> tuple[Shipment, dict[str, Any]]:
    """Load a shipment for update (created empty if new), with its stored row."""
    await conn.execute(
        "INSERT INTO shipments(tenant_id, tracking_number, status, substatus) VALUES ($1, $2, 'pending',"
        " 'pending.no_information') ON CONFLICT DO NOTHING",
        tenant_id,
        tracking_number,
    )
    row = await conn.fetchrow(
        "SELECT * FROM shipments WHERE tenant_id = $1 AND tracking_number = $2 FOR UPDATE",
        tenant_id,
        tracking_number,
    )
    entries = await _entries(conn, tenant_id, tracking_number)
    shipment = (
        build_shipment(tenant_id, tracking_number, entries)
        if entries
        else new_shipment(tenant_id, tracking_number)
    )
    return shipment, dict(row)


async def load_shipment(
    conn: Any, tenant_id: str, tracking_number: str
) -> tuple[Shipment, dict[str, Any], dict[str, Any]] | None:
    """A shipment with its row, and per-event extras (localized descriptions, local time) for display.

    Row and timeline are read in one snapshot: read apart, a handler committing in between would pair
    an old row (no order id yet) with a newer timeline.
    """
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(
            "SELECT * FROM shipments WHERE tenant_id = $1 AND tracking_number = $2",
            tenant_id,
            tracking_number,
        )
        if row is None:
            return None
        rows = await conn.fetch(
            "SELECT * FROM timeline_entries WHERE tenant_id = $1 AND tracking_number = $2",
            tenant_id,
            tracking_number,
        )
    shipment = build_shipment(tenant_id, tracking_number, [_entry(r) for r in rows])
    extras = {
        r["event_id"]: {"descriptions": json.loads(r["descriptions"]), "recorded_at": r["recorded_at"]}
        for r in rows
    }
    return shipment, dict(row), extras


async def insert_entry(
    conn: Any, tenant_id: str, tracking_number: str, entry: TimelineEntry, descriptions: dict[str, str]
) -> None:
    place = entry.location
    await conn.execute(
        "INSERT INTO timeline_entries(tenant_id, tracking_number, event_id, carrier, service, status_code,"
        " status, substatus, description, descriptions, occurred_at, occurred_at_local, location, effect)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING",
        tenant_id,
        tracking_number,
        entry.event_id,
        entry.carrier,
        entry.service,
        entry.status_code,
        entry.status.value,
        entry.substatus,
        entry.description,
        json.dumps(descriptions),
        entry.occurred_at,
        entry.occurred_at.isoformat(),
        json.dumps({"city": place.city, "state": place.state, "country": place.country}) if place else None,
        entry.effect,
    )


async def save_shipment(conn: Any, shipment: Shipment, facts: ShipmentFacts) -> None:
    await conn.execute(
        "UPDATE shipments SET status = $3, substatus = $4, carrier = coalesce($5, carrier),"
        " service = coalesce($6, service), order_id = coalesce($7, order_id), origin = coalesce($8, origin),"
        " destination = coalesce($9, destination), promised_date = coalesce($10, promised_date),"
        " created_at = $11, shipped_at = $12, delivered_at = $13, status_since = $14, updated_at = now()"
        " WHERE tenant_id = $1 AND tracking_number = $2",
        shipment.tenant_id,
        shipment.tracking_number,
        shipment.status.value,
        shipment.substatus,
        facts.carrier or shipment.carrier,
        facts.service or shipment.service,
        facts.order_id,
        json.dumps(facts.origin) if facts.origin else None,
        json.dumps(facts.destination) if facts.destination else None,
        facts.promised_date,
        shipment.created_at,
        shipment.shipped_at,
        shipment.delivered_at,
        shipment.updated_at,
    )


async def _entries(conn: Any, tenant_id: str, tracking_number: str) -> list[TimelineEntry]:
    rows = await conn.fetch(
        "SELECT * FROM timeline_entries WHERE tenant_id = $1 AND tracking_number = $2",
        tenant_id,
        tracking_number,
    )
    return [_entry(r) for r in rows]


def _entry(r: Any) -> TimelineEntry:
    loc = json.loads(r["location"]) if r["location"] else None
    return TimelineEntry(
        event_id=r["event_id"],
        carrier=r["carrier"],
        status_code=r["status_code"],
        status=Status(r["status"]),
        substatus=r["substatus"],
        description=r["description"],
        occurred_at=datetime.fromisoformat(r["occurred_at_local"]),
        location=Place(loc.get("city"), loc.get("state"), loc.get("country")) if loc else None,
        effect=r["effect"],
        service=r["service"],
    )
