"""The shipments ingest polls (table ``tracked_shipments``), and recording what a carrier said.

A shipment is tracked under every polling connection of its tenant for its carrier: it enters when an
accepted event names it (``track_shipments``, called by ``POST /v1/events``), when a carrier pushes it,
or when it is registered explicitly. Pushed and polled events go through ``record_carrier_events``:
deterministic ids, only events not seen before go to the outbox, and the next poll is scheduled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rastro_events import OrderShipped, Payload, RawTrackingEvent, new_event
from rastro_events.topics import TRACKING_RAW
from rastro_ingest.adapters.carriers.connections import Connection
from rastro_ingest.adapters.carriers.identity import carrier_event_id
from rastro_ingest.adapters.carriers.models import ParsedShipment
from rastro_ingest.adapters.carriers.registry import CARRIERS
from rastro_ingest.polling.schedule import next_poll
from rastro_kit.outbox import enqueue_events

__all__ = [
    "RecordedEvent",
    "claim_due",
    "postpone",
    "record_carrier_events",
    "register_numbers",
    "track_shipments",
]

POLLABLE = tuple(name for name, adapter in CARRIERS.items() if adapter.client is not None)


@dataclass(frozen=True)
class RecordedEvent:
    id: str
    tracking_number: str
    status_code: str
    new: bool

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tracking_number": self.tracking_number,
            "status_code": self.status_code,
            "new": self.new,
        }


async def track_shipments(conn: Any, tenant_id: str, payloads: Sequence[Payload]) -> int:
    """Start polling the shipments these accepted events name, when the tenant polls their carrier."""
    if not payloads:
        return 0
    # The tenant's polling connections first: most tenants have none, and then the batch's events
    # need not be looked at (a 1,000-event request is the hot path).
    rows = await conn.fetch(
        "SELECT id, carrier FROM carrier_connections WHERE tenant_id = $1 AND polling_enabled", tenant_id
    )
    polled = {r["carrier"] for r in rows} & set(POLLABLE)
    if not polled:
        return 0
    pairs = {
        (p.carrier.strip().lower(), p.tracking_number.strip().upper())
        for p in payloads
        if isinstance(p, RawTrackingEvent | OrderShipped) and p.carrier and p.tracking_number
    }
    targets = [(r["id"], n) for r in rows for c, n in pairs if r["carrier"] == c and c in polled]
    return await _insert_tracked(conn, tenant_id, targets)


async def register_numbers(conn: Any, connection: Connection, numbers: Sequence[str]) -> int:
    targets = [(connection.id, n.strip().upper()) for n in numbers]
    return await _insert_tracked(conn, connection.tenant_id, targets)


async def _insert_tracked(conn: Any, tenant_id: str, targets: Sequence[tuple[str, str]]) -> int:
    if not targets:
        return 0
    result = await conn.execute(
        "INSERT INTO tracked_shipments(connection_id, tracking_number, tenant_id, next_poll_at)"
        " SELECT c, n, $3, now() FROM unnest($1::text[], $2::text[]) AS t(c, n) ON CONFLICT DO NOTHING",
        [c for c, _ in targets],
        [n for _, n in targets],
        tenant_id,
    )
    return int(result.split()[-1])


async def record_carrier_events(
    conn: Any,
    connection: Connection,
    shipments: Sequence[ParsedShipment],
    *,
    now: datetime,
    polled: bool,
    traceparent: str | None = None,
) -> list[RecordedEvent]:
    """Enqueue the events not seen before, and reschedule each shipment. Call inside a transaction."""
    recorded: list[RecordedEvent] = []
    outgoing = []
    for shipment in shipments:
        row = await _lock_tracked(conn, connection, shipment.tracking_number)
        seen = set(row["seen_event_ids"])
        fresh = []
        for event in shipment.events:
            event_id = carrier_event_id(connection.tenant_id, event)
            is_new = event_id not in seen
            recorded.append(RecordedEvent(event_id, event.tracking_number, event.status_code, is_new))
            if is_new:
                seen.add(event_id)
                fresh.append(event_id)
                envelope = new_event(
                    event,
                    tenant_id=connection.tenant_id,
                    source=f"/carriers/{connection.carrier}",
                    time=event.occurred_at,
                    event_id=event_id,
                    traceparent=traceparent,
                )
                outgoing.append((TRACKING_RAW, envelope))
        await _reschedule(conn, connection, shipment, row, fresh, now=now, polled=polled)
    if outgoing:
        await enqueue_events(conn, outgoing)
    return recorded


async def _lock_tracked(conn: Any, connection: Connection, number: str) -> Any:
    await conn.execute(
        "INSERT INTO tracked_shipments(connection_id, tracking_number, tenant_id, next_poll_at)"
        " VALUES ($1, $2, $3, now()) ON CONFLICT DO NOTHING",
        connection.id,
        number,
        connection.tenant_id,
    )
    return await conn.fetchrow(
        "SELECT seen_event_ids, last_news_at, delivered_at FROM tracked_shipments"
        " WHERE connection_id = $1 AND tracking_number = $2 FOR UPDATE",
        connection.id,
        number,
    )


async def _reschedule(
    conn: Any,
    connection: Connection,
    shipment: ParsedShipment,
    row: Any,
    fresh: list[str],
    *,
    now: datetime,
    polled: bool,
) -> None:
    delivered_at = row["delivered_at"]
    if delivered_at is None and shipment.delivered and shipment.events:
        delivered_at = max(e.occurred_at for e in shipment.events)
    last_news_at = now if fresh else row["last_news_at"]
    state, next_at = next_poll(
        connection.policy, now=now, delivered_at=delivered_at, last_news_at=last_news_at
    )
    await conn.execute(
        "UPDATE tracked_shipments SET state = $3, seen_event_ids = seen_event_ids || $4::text[],"
        " last_news_at = $5, delivered_at = $6, next_poll_at = $7,"
        " last_polled_at = CASE WHEN $8 THEN $9 ELSE last_polled_at END, polls = polls + $8::int"
        " WHERE connection_id = $1 AND tracking_number = $2",
        connection.id,
        shipment.tracking_number,
        state,
        fresh,
        last_news_at,
        delivered_at,
        next_at,
        polled,
        now,
    )


async def claim_due(
    conn: Any, *, now: datetime, limit: int, lease_s: float, carriers: Sequence[str]
) -> list[Any]:
    """Take up to ``limit`` due shipments of these carriers, oldest due first, and push their next poll
    ``lease_s`` ahead, so another ingest instance does not poll them too (a crashed poll retries then)."""
    return list(
        await conn.fetch(
            "WITH due AS (SELECT t.connection_id, t.tracking_number FROM tracked_shipments t"
            " JOIN carrier_connections c ON c.id = t.connection_id"
            " WHERE t.next_poll_at <= $1 AND c.polling_enabled AND c.carrier = ANY($2::text[])"
            " ORDER BY t.next_poll_at LIMIT $3 FOR UPDATE OF t SKIP LOCKED)"
            " UPDATE tracked_shipments t SET next_poll_at = $1 + make_interval(secs => $4)"
            " FROM due WHERE t.connection_id = due.connection_id AND t.tracking_number = due.tracking_number"
            " RETURNING t.connection_id, t.tracking_number",
            now,
            list(carriers),
            limit,
            lease_s,
        )
    )


async def postpone(conn: Any, connection_id: str, numbers: Sequence[str], *, until: datetime) -> None:
    await conn.execute(
        "UPDATE tracked_shipments SET next_poll_at = $3 WHERE connection_id = $1"
        " AND tracking_number = ANY($2::text[]) AND next_poll_at IS NOT NULL",
        connection_id,
        list(numbers),
        until,
    )
