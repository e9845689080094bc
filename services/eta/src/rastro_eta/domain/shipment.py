"""What eta remembers of a shipment, folded from its ``ShipmentChanged`` events.

Normalization owns the shipment; eta keeps only what prediction and learning need. Events of one
shipment arrive in order (one key, one partition), but a replayed dead letter may arrive late: an
event older than the newest one seen only fills in what is still unknown, it never overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from rastro_eta.domain.lanes import LaneAttributes, normalize_code, region, zone
from rastro_events import ShipmentChanged, Status

__all__ = ["ShipmentFacts", "apply_change"]


@dataclass(frozen=True)
class ShipmentFacts:
    tracking_number: str
    status: Status
    attributes: LaneAttributes
    first_seen_at: datetime
    last_event_at: datetime
    created_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    promised_date: date | None = None
    out_for_delivery_at: datetime | None = None
    """When it last went out for delivery (the last milestone before delivery)."""

    @property
    def started_at(self) -> datetime:
        """Where the transit clock starts: carrier pickup if it happened, else the shipment's creation
        (else, when neither is known, the first event eta saw of it)."""
        return self.shipped_at or self.created_at or self.first_seen_at


def _facts_of(event: ShipmentChanged) -> ShipmentFacts:
    delivered_at = event.delivered_at
    if delivered_at is None and event.new_status is Status.DELIVERED:
        delivered_at = event.occurred_at
    out_for_delivery_at = event.occurred_at if event.new_status is Status.OUT_FOR_DELIVERY else None
    return ShipmentFacts(
        tracking_number=event.tracking_number,
        status=event.new_status,
        attributes=LaneAttributes(
            carrier=normalize_code(event.carrier),
            service=normalize_code(event.service),
            origin=region(event.origin),
            destination=region(event.destination),
            destination_zone=zone(event.destination),
        ),
        first_seen_at=min(event.occurred_at, event.created_at or event.occurred_at),
        last_event_at=event.occurred_at,
        created_at=event.created_at,
        shipped_at=event.shipped_at,
        delivered_at=delivered_at,
        promised_date=event.promised_date,
        out_for_delivery_at=out_for_delivery_at,
    )


def _fill(newer: ShipmentFacts, older: ShipmentFacts) -> ShipmentFacts:
    """``newer``, with what it does not know taken from ``older``."""
    a, b = newer.attributes, older.attributes
    return replace(
        newer,
        attributes=LaneAttributes(
            carrier=a.carrier or b.carrier,
            service=a.service or b.service,
            origin=a.origin or b.origin,
            destination=a.destination or b.destination,
            destination_zone=a.destination_zone or b.destination_zone,
        ),
        first_seen_at=min(newer.first_seen_at, older.first_seen_at),
        last_event_at=max(newer.last_event_at, older.last_event_at),
        created_at=newer.created_at or older.created_at,
        shipped_at=newer.shipped_at or older.shipped_at,
        delivered_at=newer.delivered_at or older.delivered_at,
        promised_date=newer.promised_date or older.promised_date,
        out_for_delivery_at=newer.out_for_delivery_at or older.out_for_delivery_at,
    )


def apply_change(previous: ShipmentFacts | None, event: ShipmentChanged) -> ShipmentFacts:
    """The shipment after ``event``. The newest event decides the status; the older one fills gaps."""
    current = _facts_of(event)
    if previous is None:
        return current
    if event.occurred_at >= previous.last_event_at:
        return _fill(current, previous)
    return _fill(previous, current)
