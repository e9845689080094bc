"""Consumer handlers: raw carrier events and order events fold into shipments; ETAs join the read model.

Every accepted raw event emits one ``rastro.tracking.normalized.v1``; every status change one
``rastro.shipments.v1``. A duplicate (same event id, or the same carrier event told twice) emits nothing.

``handle_batch`` is the consumer's batch handler: consecutive raw events of a partition batch are
mapped, then folded together through one ``ShipmentBatch`` (one query to lock and load all their
shipments, one to load their timelines, one write per table), in offset order. The per-record handler
``on_raw_tracking`` is the same code with a batch of one, which is what the consumer's isolated path
(a failing record in the batch) runs, so both paths give the same shipments and the same events. Events
that cannot be mapped (unknown carrier, unmapped code) are found before anything is written and handed
back to the runner as ``RecordsFailed``: it dead-letters them and runs the rest again as one batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from rastro_events import (
    EtaPredicted,
    InvoiceIssued,
    Location,
    NormalizedTrackingEvent,
    OrderCancelled,
    OrderCreated,
    OrderShipped,
    RawTrackingEvent,
    ShipmentChanged,
    Status,
)
from rastro_kit.consumer import BatchHandler, Handler, HandlerContext, RecordsFailed
from rastro_kit.errors import PermanentError, Reason, TransientError
from rastro_normalization.adapters import repository as repo
from rastro_normalization.adapters.carriers import UnknownCarrierTable, load_carrier_table, standard_table_for
from rastro_normalization.carrier_resolution import detect_event_carrier, unmapped_code
from rastro_normalization.domain.carriers import carrier_slug, resolve_carrier
from rastro_normalization.domain.codes import CodeEntry, CodeTable
from rastro_normalization.domain.mappings import TenantMappings, lookup_code
from rastro_normalization.domain.orders import OrderEvent, order_milestone
from rastro_normalization.domain.services import canonical_service
from rastro_normalization.domain.state_machine import Shipment, StatusChange
from rastro_normalization.domain.timeline import Place, TimelineEntry
from rastro_normalization.fleet.repository import assign_vehicle
from rastro_normalization.kpis.facts import record_order_facts
from rastro_normalization.mappings import tenant_mappings, tenants_mappings

__all__ = ["BATCH_HANDLER", "HANDLERS", "handle_batch"]

_RAW = RawTrackingEvent.ce_type()


def _place(loc: Location | None) -> Place | None:
    return Place(loc.city, loc.state, loc.country) if loc else None


def _loc(loc: Location | None) -> dict[str, Any] | None:
    return loc.model_dump(exclude_none=True) if loc else None


def _map_codes(event: RawTrackingEvent, mappings: TenantMappings) -> tuple[str, CodeEntry, str | None]:
    """Carrier, code entry and canonical service of a raw event, the tenant's mappings first."""
    named = bool(event.carrier and event.carrier.strip())
    carrier = (
        resolve_carrier(event.carrier, mappings.carrier_aliases)
        if named
        else detect_event_carrier(event.tracking_number)  # flagged (dead-lettered) unless unambiguous
    )
    table: CodeTable | None = standard_table_for(event.status_code)
    if carrier is None and table is not None and named:
        # An EDI occurrence needs no carrier table: an unknown sender keeps its own name, as a slug.
        carrier = carrier_slug(event.carrier or "")
    if carrier is None:
        raise PermanentError(Reason.UNKNOWN_CARRIER, f"unknown carrier {event.carrier!r}")
    if table is None:
        try:
            table = load_carrier_table(carrier)
        except UnknownCarrierTable:
            table = None  # a tenant status override may still map this carrier's codes
    code = lookup_code(carrier, event.status_code, table, mappings)
    if code is None and table is None:
        raise PermanentError(Reason.UNKNOWN_CARRIER, f"no code table for carrier {carrier!r} yet")
    if code is None:
        raise unmapped_code(carrier, event.status_code)
    return carrier, code, canonical_service(event.service, carrier, mappings.service_aliases)


class _Mapped(NamedTuple):
    """A raw event once mapped: what it adds to its shipment's timeline, and what it says of it."""

    ctx: HandlerContext
    event: RawTrackingEvent
    carrier: str
    code: CodeEntry
    entry: TimelineEntry
    facts: repo.ShipmentFacts


def _mapped(ctx: HandlerContext, event: RawTrackingEvent, mappings: TenantMappings) -> _Mapped:
    carrier, code, service = _map_codes(event, mappings)
    assert ctx.envelope is not None
    entry = TimelineEntry(
        event_id=ctx.envelope.id,
        carrier=carrier,
        status_code=code.code,
        status=code.status,
        substatus=code.substatus,
        description=event.description or code.descriptions.get("pt-BR"),
        occurred_at=event.occurred_at,
        location=_place(event.location),
        effect=code.effect,
        service=service,
    )
    facts = repo.ShipmentFacts(
        carrier=carrier,
        service=service,
        order_id=event.order_id,
        origin=_loc(event.origin),
        destination=_loc(event.destination),
    )
    return _Mapped(ctx, event, carrier, code, entry, facts)


async def _raw_events(conn: Any, contexts: Sequence[HandlerContext]) -> None:
    """Fold consecutive raw events into their shipments, in order, with one ``ShipmentBatch``."""
    mappings = await tenants_mappings(conn, {ctx.tenant_id for ctx in contexts})
    # Map everything first: a record that cannot be mapped fails before anything is locked or written,
    # so the runner can dead-letter it and run the others again (``RecordsFailed``).
    mapped, failures = [], {}
    for i, ctx in enumerate(contexts):
        try:
            mapped.append(_mapped(ctx, ctx.payload, mappings[ctx.tenant_id]))
        except (PermanentError, TransientError) as exc:
            failures[i] = exc
    if failures:
        raise RecordsFailed(failures)
    batch = repo.ShipmentBatch(conn)
    await batch.lock((m.ctx.tenant_id, m.event.tracking_number) for m in mapped)
    for m in mapped:
        descriptions = m.code.descriptions
        folded = batch.fold(m.ctx.tenant_id, m.event.tracking_number, m.entry, descriptions, m.facts)
        if folded is None:
            continue
        shipment, code, event = folded.shipment, m.code, m.event
        if folded.change is not None:
            await m.ctx.emit(_shipment_changed(shipment, folded.change, folded.row, m.facts))
        # A correction (Correios EST) has no status of its own: subscribers see where it leaves the shipment.
        status, substatus = (
            (shipment.status, shipment.substatus) if code.effect else (code.status, code.substatus)
        )
        await m.ctx.emit(
            NormalizedTrackingEvent(
                tracking_number=event.tracking_number,
                carrier=m.carrier,
                service=m.entry.service,
                status_code=code.code,
                status=status,
                substatus=substatus,
                description=m.entry.description,
                descriptions=dict(descriptions),
                occurred_at=event.occurred_at,
                occurred_at_utc=event.occurred_at.astimezone(UTC),
                location=event.location,
                raw_event_id=m.entry.event_id,
            )
        )
    await batch.flush()


async def on_raw_tracking(ctx: HandlerContext, envelope: Any, event: RawTrackingEvent) -> None:
    try:
        await _raw_events(ctx.conn, [ctx])
    except RecordsFailed as failed:  # alone, the record's own error is what the runner routes
        raise failed.failures[0] from None


async def handle_batch(conn: Any, contexts: Sequence[HandlerContext]) -> None:
    """A partition batch's new records: runs of raw events set-based, anything else one by one, in order."""
    start = 0
    while start < len(contexts):
        end = start
        while end < len(contexts) and _is_raw(contexts[end]):
            end += 1
        if end > start:
            try:
                await _raw_events(conn, contexts[start:end])
            except RecordsFailed as failed:
                if start > 0:  # records before these were written: only the slow path can sort it out
                    raise next(iter(failed.failures.values())) from None
                raise
            start = end
            continue
        ctx = contexts[start]
        assert ctx.envelope is not None
        await HANDLERS[ctx.envelope.type](ctx, ctx.envelope, ctx.payload)
        start += 1


def _is_raw(ctx: HandlerContext) -> bool:
    return ctx.envelope is not None and ctx.envelope.type == _RAW


async def on_order_event(ctx: HandlerContext, envelope: Any, event: OrderEvent) -> None:
    code, status, substatus, descriptions = order_milestone(event)
    entry = TimelineEntry(
        event_id=envelope.id,
        carrier=None,
        status_code=code,
        status=status,
        substatus=substatus,
        description=descriptions["en"],
        occurred_at=event.occurred_at,
    )
    # An order's events arrive on different keys (order id before shipping, tracking number after) and
    # so on different partitions, handled concurrently: serialize them per order, so the one that
    # commits second always sees the first (no order event left out of its shipment's timeline).
    await ctx.conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"order:{ctx.tenant_id}/{event.order_id}"
    )
    if event.tracking_number is None:
        await ctx.conn.execute(
            "INSERT INTO order_events VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            ctx.tenant_id,
            event.order_id,
            envelope.id,
            status.value,
            substatus,
            code,
            event.occurred_at,
            event.occurred_at.isoformat(),
        )
        linked = await ctx.conn.fetch(
            "SELECT tracking_number FROM shipments WHERE tenant_id = $1 AND order_id = $2",
            ctx.tenant_id,
            event.order_id,
        )
        batch = repo.ShipmentBatch(ctx.conn)
        await batch.lock((ctx.tenant_id, row["tracking_number"]) for row in linked)
        for row in linked:
            await _fold(ctx, batch, row["tracking_number"], entry, descriptions, repo.ShipmentFacts())
        await batch.flush()
        await record_order_facts(ctx.conn, ctx.tenant_id, event)  # KPI facts: sales channel, shipping cost
        return
    mappings = await tenant_mappings(ctx.conn, ctx.tenant_id)
    batch = repo.ShipmentBatch(ctx.conn)
    await batch.lock([(ctx.tenant_id, event.tracking_number)])
    await _fold(ctx, batch, event.tracking_number, entry, descriptions, _order_facts(event, mappings))
    await _join_earlier_order_events(ctx, batch, event.order_id, event.tracking_number)
    await batch.flush()
    await record_order_facts(ctx.conn, ctx.tenant_id, event)
    if isinstance(event, OrderShipped) and event.vehicle_id:  # own fleet: the geofence processor follows it
        await assign_vehicle(ctx.conn, ctx.tenant_id, event.tracking_number, event.vehicle_id, event.route_id)


def _order_facts(event: OrderEvent, mappings: TenantMappings) -> repo.ShipmentFacts:
    carrier = resolve_carrier(event.carrier, mappings.carrier_aliases) if event.carrier else None
    shipped = isinstance(event, OrderShipped | OrderCreated)
    service = event.service if isinstance(event, OrderShipped) else None
    return repo.ShipmentFacts(
        carrier=carrier or event.carrier,
        order_id=event.order_id,
        service=canonical_service(service, carrier, mappings.service_aliases),
        origin=_loc(event.origin) if shipped else None,  # type: ignore[union-attr]
        destination=_loc(event.destination) if shipped else None,  # type: ignore[union-attr]
        promised_date=event.promised_date if shipped else None,  # type: ignore[union-attr]
    )


async def _join_earlier_order_events(
    ctx: HandlerContext, batch: repo.ShipmentBatch, order_id: str, tracking_number: str
) -> None:
    rows = await ctx.conn.fetch(
        "SELECT * FROM order_events WHERE tenant_id = $1 AND order_id = $2", ctx.tenant_id, order_id
    )
    for r in rows:
        entry = TimelineEntry(
            event_id=r["event_id"],
            carrier=None,
            status_code=r["code"],
            status=Status(r["status"]),
            substatus=r["substatus"],
            description=None,
            occurred_at=datetime.fromisoformat(r["occurred_at_local"]),
        )
        await _fold(ctx, batch, tracking_number, entry, {}, repo.ShipmentFacts())


async def _fold(
    ctx: HandlerContext,
    batch: repo.ShipmentBatch,
    tracking_number: str,
    entry: TimelineEntry,
    descriptions: dict[str, str],
    facts: repo.ShipmentFacts,
) -> None:
    """Fold one order entry into its (locked) shipment; a status change is emitted."""
    folded = batch.fold(ctx.tenant_id, tracking_number, entry, descriptions, facts)
    if folded is not None and folded.change is not None:
        await ctx.emit(_shipment_changed(folded.shipment, folded.change, folded.row, facts))


def _shipment_changed(
    s: Shipment, change: StatusChange, row: dict[str, Any], facts: repo.ShipmentFacts
) -> ShipmentChanged:
    origin = facts.origin or (json.loads(row["origin"]) if row.get("origin") else None)
    destination = facts.destination or (json.loads(row["destination"]) if row.get("destination") else None)
    return ShipmentChanged(
        tracking_number=s.tracking_number,
        carrier=facts.carrier or s.carrier or row.get("carrier"),
        service=facts.service or s.service or row.get("service"),
        old_status=change.old_status,
        new_status=s.status,
        substatus=s.substatus,
        occurred_at=change.occurred_at,
        origin=Location(**origin) if origin else None,
        destination=Location(**destination) if destination else None,
        promised_date=facts.promised_date or row.get("promised_date"),
        created_at=s.created_at,
        shipped_at=s.shipped_at,
        delivered_at=s.delivered_at,
    )


async def on_eta(ctx: HandlerContext, envelope: Any, event: EtaPredicted) -> None:
    eta = {
        "expected_date": event.expected_date.isoformat(),
        "promise_date": event.promise_date.isoformat(),
        "model_version": event.model_version,
        "sample_size": event.sample_size,
        "lane": event.lane.model_dump(exclude_none=True),
        "predicted_at": event.predicted_at.isoformat(),
        "milestone": event.milestone.value,
    }
    if event.expected_at is not None:  # last mile (own fleet): a time, not just a day
        eta["expected_at"] = event.expected_at.isoformat()
        eta["remaining_m"] = event.remaining_m
    await ctx.conn.execute(
        "UPDATE shipments SET eta = $3 WHERE tenant_id = $1 AND tracking_number = $2"
        " AND (eta IS NULL OR (eta->>'predicted_at')::timestamptz <= $4)",
        ctx.tenant_id,
        event.tracking_number,
        json.dumps(eta),
        event.predicted_at,
    )


HANDLERS: dict[str, Handler] = {
    RawTrackingEvent.ce_type(): on_raw_tracking,
    OrderCreated.ce_type(): on_order_event,
    InvoiceIssued.ce_type(): on_order_event,
    OrderShipped.ce_type(): on_order_event,
    OrderCancelled.ce_type(): on_order_event,
    EtaPredicted.ce_type(): on_eta,
}
BATCH_HANDLER: BatchHandler = handle_batch
