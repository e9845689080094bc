"""The shipment state machine on concrete Correios stories."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import count

import pytest

from rastro_events.taxonomy import Status
from rastro_normalization.adapters.carriers import load_carrier_table
from rastro_normalization.domain.state_machine import (
    Place,
    Shipment,
    StatusChange,
    TimelineEntry,
    apply,
    build_shipment,
    new_shipment,
)
from rastro_normalization.domain.timeline import find_duplicate

pytestmark = pytest.mark.unit

BRT = timezone(timedelta(hours=-3))
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=BRT)
SAO_PAULO = Place(city="São Paulo", state="SP", country="BR")
_ids = count(1)


def correios(
    code: str, hours: float, *, event_id: str | None = None, place: Place = SAO_PAULO
) -> TimelineEntry:
    entry = load_carrier_table("correios").lookup(code)
    assert entry is not None, code
    return TimelineEntry(
        event_id=event_id or f"ev-{next(_ids):05d}",
        carrier="correios",
        status_code=entry.code,
        status=entry.status,
        substatus=entry.substatus,
        description=entry.descriptions["pt-BR"],
        occurred_at=T0 + timedelta(hours=hours),
        location=place,
        effect=entry.effect,
    )


def order_event(status: Status, substatus: str, hours: float) -> TimelineEntry:
    return TimelineEntry(
        event_id=f"ev-{next(_ids):05d}",
        carrier=None,
        status_code=substatus,
        status=status,
        substatus=substatus,
        description=None,
        occurred_at=T0 + timedelta(hours=hours),
    )


def run(*entries: TimelineEntry) -> tuple[Shipment, list[StatusChange | None]]:
    shipment = new_shipment("acme", "AA123456785BR")
    changes: list[StatusChange | None] = []
    for entry in entries:
        shipment, change = apply(shipment, entry)
        changes.append(change)
    return shipment, changes


def test_new_shipment_is_pending() -> None:
    shipment = new_shipment("acme", "AA123456785BR")
    assert (shipment.status, shipment.substatus, shipment.timeline) == (
        Status.PENDING,
        "pending.no_information",
        (),
    )
    assert shipment.created_at is shipment.updated_at is None


def test_happy_path() -> None:
    posted, forwarded, out, delivered = (
        correios("PO-01", 0),
        correios("RO-01", 5),
        correios("OEC-01", 30),
        correios("BDE-01", 33),
    )
    shipment, changes = run(posted, forwarded, out, delivered)
    assert [c.new_status if c else None for c in changes] == [
        Status.IN_TRANSIT,
        Status.IN_TRANSIT,
        Status.OUT_FOR_DELIVERY,
        Status.DELIVERED,
    ]
    assert changes[1] == StatusChange(
        Status.IN_TRANSIT, Status.IN_TRANSIT, "in_transit.departed_facility", forwarded.occurred_at
    )
    assert (shipment.status, shipment.substatus) == (Status.DELIVERED, "delivered.signed")
    assert shipment.carrier == "correios"
    assert shipment.created_at == shipment.shipped_at == posted.occurred_at
    assert shipment.delivered_at == shipment.updated_at == delivered.occurred_at


def test_older_event_joins_the_timeline_without_moving_back() -> None:
    shipment, changes = run(correios("OEC-01", 30), correios("BDE-01", 33), correios("RO-01", 5))
    assert changes[-1] is None
    assert shipment.status is Status.DELIVERED
    assert [e.status_code for e in shipment.timeline] == ["RO-01", "OEC-01", "BDE-01"]


def test_in_transit_never_goes_back_to_info_received() -> None:
    shipment, changes = run(
        correios("PO-01", 5), order_event(Status.INFO_RECEIVED, "info_received.invoice_issued", 6)
    )
    assert changes[-1] is None
    assert shipment.status is Status.IN_TRANSIT


def test_delivery_attempt_cycle_follows_event_time() -> None:
    _, changes = run(
        correios("OEC-01", 24), correios("BDE-02", 28), correios("OEC-01", 48), correios("BDE-01", 50)
    )
    assert [c.new_status if c else None for c in changes] == [
        Status.OUT_FOR_DELIVERY,
        Status.FAILED_ATTEMPT,
        Status.OUT_FOR_DELIVERY,
        Status.DELIVERED,
    ]


def test_late_failed_attempt_does_not_undo_a_later_dispatch() -> None:
    shipment, changes = run(correios("OEC-01", 48), correios("BDE-02", 28))
    assert changes[-1] is None
    assert shipment.status is Status.OUT_FOR_DELIVERY


def test_pickup_after_failed_attempt_and_in_transit_in_between_is_ignored() -> None:
    shipment, changes = run(
        correios("OEC-01", 24), correios("BDE-02", 28), correios("DO-01", 30), correios("LDI-01", 40)
    )
    assert changes[2] is None
    assert (shipment.status, shipment.substatus) == (
        Status.AVAILABLE_FOR_PICKUP,
        "available_for_pickup.at_pickup_point",
    )
    shipment, _ = apply(shipment, correios("BDI-01", 50))
    assert (shipment.status, shipment.substatus) == (Status.DELIVERED, "delivered.at_pickup_point")


def test_exception_is_entered_and_left_by_later_progress() -> None:
    _, changes = run(correios("PO-01", 0), correios("BDE-28", 10), correios("OEC-01", 30))
    assert [c.new_status if c else None for c in changes] == [
        Status.IN_TRANSIT,
        Status.EXCEPTION,
        Status.OUT_FOR_DELIVERY,
    ]


def test_exception_is_not_left_by_a_step_backwards_or_an_older_event() -> None:
    shipment, changes = run(correios("OEC-01", 30), correios("BDE-28", 31), correios("RO-01", 32))
    assert changes[-1] is None and shipment.status is Status.EXCEPTION
    shipment, change = apply(shipment, correios("OEC-01", 29, place=Place(city="Campinas")))
    assert change is None and shipment.status is Status.EXCEPTION


def test_customs_hold_left_when_released() -> None:
    _, changes = run(correios("PAR-16", 0), correios("BDE-54", 24), correios("PAR-17", 72))
    assert [c.substatus if c else None for c in changes] == [
        "in_transit.customs_clearance",
        "exception.customs_hold",
        "in_transit.in_route",
    ]


def test_no_exception_after_delivery() -> None:
    shipment, changes = run(correios("BDE-01", 30), correios("BDE-09", 40))
    assert changes[-1] is None and shipment.status is Status.DELIVERED


def test_return_may_follow_delivery_and_then_ends() -> None:
    delivered = correios("BDE-01", 30)
    shipment, changes = run(delivered, correios("FC-01", 50), correios("BDE-23", 90), correios("OEC-01", 100))
    assert [c.new_status if c else None for c in changes] == [
        Status.DELIVERED,
        Status.RETURNING,
        Status.RETURNED,
        None,
    ]
    assert shipment.delivered_at == delivered.occurred_at


def test_refusal_means_returning_and_in_transit_on_the_way_back_keeps_it() -> None:
    shipment, changes = run(correios("OEC-01", 24), correios("BDE-04", 26), correios("RO-01", 30))
    assert changes[-1] is None
    assert (shipment.status, shipment.substatus) == (Status.RETURNING, "returning.refused")


def test_cancelled_is_terminal() -> None:
    shipment, changes = run(correios("BDI-14", 1), correios("PO-01", 5), correios("BDE-23", 9))
    assert changes[1:] == [None, None]
    assert (shipment.status, shipment.substatus) == (Status.CANCELLED, "cancelled.by_shipper")


def test_duplicate_carrier_events_collapse() -> None:
    first = correios("OEC-01", 30, event_id="ev-b")
    shipment, _ = run(first)
    again = correios("oec 1", 30, event_id="ev-c")
    same_instant_other_offset = replace(
        correios("OEC-01", 30, event_id="ev-d"), occurred_at=first.occurred_at.astimezone(UTC)
    )
    for duplicate in (again, same_instant_other_offset):
        assert find_duplicate(shipment.timeline, duplicate) == first
        updated, change = apply(shipment, duplicate)
        assert updated is shipment and change is None
    elsewhere = correios(
        "OEC-01", 30, event_id="ev-e", place=Place(city="Campinas", state="SP", country="BR")
    )
    assert len(apply(shipment, elsewhere)[0].timeline) == 2


def test_first_copy_of_a_duplicate_stays_and_order_does_not_matter() -> None:
    out = correios("OEC-01", 30, event_id="ev-m")
    a, b = correios("BDE-02", 31, event_id="ev-a"), correios("BDE-02", 31, event_id="ev-z")
    ab, ba = run(out, a, b)[0], run(b, out, a)[0]
    assert [e.event_id for e in ab.timeline] == ["ev-m", "ev-a"]
    assert [e.event_id for e in ba.timeline] == ["ev-m", "ev-z"]
    assert (ab.status, ab.substatus, ab.updated_at) == (ba.status, ba.substatus, ba.updated_at)


def test_same_instant_entries_are_ordered_by_content_not_by_which_copy_was_kept() -> None:
    posted = correios("PO-01", 1, event_id="ev-m")
    forwarded_a = correios("RO-01", 1, event_id="ev-a")
    forwarded_z = correios("RO-01", 1, event_id="ev-z")
    for shipment in (run(forwarded_a, posted, forwarded_z)[0], run(forwarded_z, posted, forwarded_a)[0]):
        assert [e.status_code for e in shipment.timeline] == ["PO-01", "RO-01"]
        assert shipment.substatus == "in_transit.departed_facility"


def test_apply_is_idempotent() -> None:
    entry = correios("PO-01", 0)
    shipment, change = run(entry)
    assert change[0] is not None
    again, change_again = apply(shipment, entry)
    assert again is shipment and change_again is None


def test_correction_withdraws_the_previous_carrier_event() -> None:
    out, wrong, correction = correios("OEC-01", 30), correios("BDE-01", 32), correios("EST-01", 33)
    shipment, changes = run(out, wrong, correction)
    assert changes[-1] == StatusChange(
        Status.DELIVERED, Status.OUT_FOR_DELIVERY, "out_for_delivery.with_courier", out.occurred_at
    )
    assert [(e.status_code, e.withdrawn) for e in shipment.timeline] == [
        ("OEC-01", False),
        ("BDE-01", True),
        ("EST-01", False),
    ]
    assert shipment.delivered_at is None
    assert run(correction, wrong, out)[0] == shipment


def test_correction_skips_events_of_other_sources() -> None:
    posted = correios("PO-01", 0)
    invoice = order_event(Status.INFO_RECEIVED, "info_received.invoice_issued", 1)
    shipment, _ = run(order_event(Status.INFO_RECEIVED, "info_received.order_created", -5), posted, invoice)
    shipment, change = apply(shipment, correios("EST-01", 2))
    assert [e.status_code for e in shipment.timeline if e.withdrawn] == ["PO-01"]
    assert change is not None and change.new_status is Status.INFO_RECEIVED
    assert shipment.shipped_at is None


def test_build_shipment_equals_applying_one_by_one() -> None:
    entries = [correios("PO-01", 0), correios("OEC-01", 30), correios("BDE-02", 31), correios("EST-01", 32)]
    assert build_shipment("acme", "AA123456785BR", reversed(entries)) == run(*entries)[0]


def test_entries_are_validated() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TimelineEntry(
            "e", "correios", "PO-01", Status.IN_TRANSIT, "in_transit.picked_up", None, datetime(2026, 1, 1)
        )
    with pytest.raises(ValueError, match="substatus"):
        TimelineEntry("e", "correios", "PO-01", Status.IN_TRANSIT, "delivered.signed", None, T0)
