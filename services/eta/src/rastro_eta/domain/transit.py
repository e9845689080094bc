"""Transit time of a delivered shipment: what the lanes learn from.

transit days = delivered_at − (shipped_at, or created_at when pickup was never reported), in days.
A shipment is learned once; the store enforces it (one sample per tenant and tracking number).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rastro_eta.domain.lanes import LaneAttributes
from rastro_eta.domain.shipment import ShipmentFacts

__all__ = ["SECONDS_PER_DAY", "LaneSample", "sample_of", "transit_days"]

SECONDS_PER_DAY = 86_400.0


def transit_days(started_at: datetime, delivered_at: datetime) -> float | None:
    """Days between two instants; None when delivery precedes the start (bad data is not learned)."""
    seconds = (delivered_at - started_at).total_seconds()
    if seconds < 0:
        return None
    return seconds / SECONDS_PER_DAY


@dataclass(frozen=True)
class LaneSample:
    tracking_number: str
    attributes: LaneAttributes
    transit_days: float
    started_at: datetime
    delivered_at: datetime


def sample_of(shipment: ShipmentFacts) -> LaneSample | None:
    """The sample a delivered shipment teaches its lanes, or None (not delivered, or times unusable).

    Keyed on the delivery time rather than the current status, so a shipment already returning
    after its delivery (or whose delivery event arrives late) is still learned.
    """
    if shipment.delivered_at is None:
        return None
    started_at = shipment.shipped_at or shipment.created_at
    if started_at is None:
        return None
    days = transit_days(started_at, shipment.delivered_at)
    if days is None:
        return None
    return LaneSample(shipment.tracking_number, shipment.attributes, days, started_at, shipment.delivered_at)
