"""What a delivered shipment teaches its lanes: how long delivery took from each milestone it passed.

Three segments, one per milestone a prediction can be made from: from the shipment's creation (the
order), from carrier pickup, and from going out for delivery. A segment whose start is unknown, or
lies after the delivery (bad data), is not learned. A shipment is learned once; the store enforces it
(one sample per tenant and tracking number).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from rastro_eta.domain.lanes import LaneAttributes
from rastro_eta.domain.shipment import ShipmentFacts

__all__ = [
    "SECONDS_PER_DAY",
    "LaneSample",
    "Segment",
    "milestone_of",
    "sample_of",
    "transit_days",
]

SECONDS_PER_DAY = 86_400.0


class Segment(StrEnum):
    """Where the transit clock starts: the milestone a prediction is made from."""

    CREATED = "created"
    SHIPPED = "shipped"
    OUT_FOR_DELIVERY = "out_for_delivery"


def transit_days(started_at: datetime, delivered_at: datetime) -> float | None:
    """Calendar days between two instants; None when delivery precedes the start (not learned)."""
    seconds = (delivered_at - started_at).total_seconds()
    if seconds < 0:
        return None
    return seconds / SECONDS_PER_DAY


def milestone_of(shipment: ShipmentFacts) -> tuple[Segment, datetime]:
    """The latest milestone the shipment has passed, and when: the base of its prediction."""
    shipped = shipment.shipped_at
    out = shipment.out_for_delivery_at
    if out is not None and (shipped is None or out >= shipped):
        return Segment.OUT_FOR_DELIVERY, out
    if shipped is not None:
        return Segment.SHIPPED, shipped
    return Segment.CREATED, shipment.created_at or shipment.first_seen_at


@dataclass(frozen=True)
class LaneSample:
    tracking_number: str
    attributes: LaneAttributes
    delivered_at: datetime
    starts: dict[Segment, datetime]
    """The start of every milestone segment this delivery can teach (start ≤ delivery)."""
    promised_date: date | None = None
    """The shop's promise, kept beside the sample."""

    @property
    def started_at(self) -> datetime:
        """Pickup if known, else creation: the start of the one transit time kept per shipment."""
        return self.starts.get(Segment.SHIPPED) or self.starts.get(Segment.CREATED) or self.delivered_at

    @property
    def transit_days(self) -> float:
        return (self.delivered_at - self.started_at).total_seconds() / SECONDS_PER_DAY


def sample_of(shipment: ShipmentFacts) -> LaneSample | None:
    """The sample a delivered shipment teaches its lanes, or None (not delivered, or times unusable).

    Keyed on the delivery time rather than the current status, so a shipment already returning
    after its delivery (or whose delivery event arrives late) is still learned.
    """
    delivered = shipment.delivered_at
    if delivered is None:
        return None
    candidates = {
        Segment.CREATED: shipment.created_at,
        Segment.SHIPPED: shipment.shipped_at,
        Segment.OUT_FOR_DELIVERY: shipment.out_for_delivery_at,
    }
    starts = {s: at for s, at in candidates.items() if at is not None and at <= delivered}
    if Segment.CREATED not in starts and Segment.SHIPPED not in starts:
        return None

    return LaneSample(
        shipment.tracking_number, shipment.attributes, delivered, starts, shipment.promised_date
    )
