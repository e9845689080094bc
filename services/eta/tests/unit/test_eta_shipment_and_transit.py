"""Folding ShipmentChanged events into what eta knows, and the transit time it learns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rastro_eta.domain.lanes import LaneAttributes
from rastro_eta.domain.shipment import apply_change
from rastro_eta.domain.transit import sample_of, transit_days
from rastro_events import Location, ShipmentChanged, Status

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def change(status: Status, at: datetime, **fields: Any) -> ShipmentChanged:
    defaults: dict[str, Any] = {
        "tracking_number": "AA123456785BR",
        "carrier": "Correios",
        "service": "SEDEX",
        "origin": Location(state="sp"),
        "destination": Location(state="RJ"),
        "created_at": T0,
    }
    return ShipmentChanged(
        new_status=status, substatus=f"{status.value}.x", occurred_at=at, **(defaults | fields)
    )


def test_first_event_gives_normalized_lane_attributes() -> None:
    facts = apply_change(None, change(Status.INFO_RECEIVED, T0))
    assert facts.attributes == LaneAttributes("correios", "sedex", "SP", "RJ")
    assert facts.status is Status.INFO_RECEIVED
    assert facts.started_at == T0


def test_newer_event_moves_status_and_keeps_what_it_does_not_say() -> None:
    first = apply_change(None, change(Status.INFO_RECEIVED, T0))
    shipped = T0 + timedelta(days=1)
    later = change(Status.IN_TRANSIT, shipped, carrier=None, origin=None, shipped_at=shipped)
    facts = apply_change(first, later)
    assert facts.status is Status.IN_TRANSIT
    assert facts.attributes == LaneAttributes("correios", "sedex", "SP", "RJ")
    assert facts.started_at == shipped  # pickup, once it happened
    assert facts.last_event_at == shipped


def test_an_older_event_arriving_late_only_fills_gaps() -> None:
    current = apply_change(None, change(Status.IN_TRANSIT, T0 + timedelta(days=2), service=None))
    late = change(Status.INFO_RECEIVED, T0, service="pac", carrier="jadlog")
    facts = apply_change(current, late)
    assert facts.status is Status.IN_TRANSIT
    assert facts.attributes.carrier == "correios"
    assert facts.attributes.service == "pac"
    assert facts.last_event_at == T0 + timedelta(days=2)


def test_delivered_without_delivered_at_is_delivered_when_it_happened() -> None:
    at = T0 + timedelta(days=3)
    facts = apply_change(None, change(Status.DELIVERED, at))
    assert facts.delivered_at == at


def test_transit_days_start_at_pickup_or_else_creation() -> None:
    shipped, delivered = T0 + timedelta(hours=12), T0 + timedelta(days=3)
    with_pickup = apply_change(None, change(Status.DELIVERED, delivered, shipped_at=shipped))
    without = apply_change(None, change(Status.DELIVERED, delivered))
    sample = sample_of(with_pickup)
    assert sample is not None and sample.transit_days == pytest.approx(2.5)
    assert sample.started_at == shipped
    other = sample_of(without)
    assert other is not None and other.transit_days == pytest.approx(3.0)


def test_only_a_delivered_shipment_with_usable_times_is_learned() -> None:
    assert sample_of(apply_change(None, change(Status.IN_TRANSIT, T0 + timedelta(days=1)))) is None
    no_start = change(Status.DELIVERED, T0, created_at=None)
    assert sample_of(apply_change(None, no_start)) is None
    backwards = change(Status.DELIVERED, T0, delivered_at=T0 - timedelta(days=1))
    assert sample_of(apply_change(None, backwards)) is None
    assert transit_days(T0, T0 - timedelta(seconds=1)) is None
    assert transit_days(T0, T0) == 0.0


def test_a_shipment_returning_after_delivery_keeps_its_delivery_to_learn_from() -> None:
    delivered_at = T0 + timedelta(days=2)
    delivered = apply_change(None, change(Status.DELIVERED, delivered_at))
    returning = apply_change(delivered, change(Status.RETURNING, delivered_at + timedelta(days=1)))
    assert returning.status is Status.RETURNING
    sample = sample_of(returning)
    assert sample is not None and sample.transit_days == pytest.approx(2.0)
