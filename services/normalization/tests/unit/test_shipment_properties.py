"""Properties of the state machine over random shipments built from real Correios codes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rastro_events.taxonomy import TERMINAL, Status
from rastro_normalization.adapters.carriers import load_carrier_table
from rastro_normalization.domain.state_machine import (
    RETURNS,
    Place,
    Shipment,
    StatusChange,
    TimelineEntry,
    apply,
    build_shipment,
    new_shipment,
)
from rastro_normalization.domain.timeline import duplicate_key, order_key

pytestmark = pytest.mark.unit

PROPERTY = settings(max_examples=500, deadline=None, database=None)
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
OFFSETS = (UTC, timezone(timedelta(hours=-3)), timezone(timedelta(hours=5, minutes=30)))
PLACES = (None, Place("São Paulo", "SP", "BR"), Place("Curitiba", "PR", "BR"))
CORREIOS = tuple(load_carrier_table("correios"))
ORDER_EVENTS = (
    (Status.INFO_RECEIVED, "info_received.order_created"),
    (Status.INFO_RECEIVED, "info_received.invoice_issued"),
    (Status.INFO_RECEIVED, "info_received.label_created"),
    (Status.CANCELLED, "cancelled.by_shipper"),
    (Status.EXPIRED, "expired.no_updates"),
)
BEFORE_TRANSIT = frozenset({Status.PENDING, Status.INFO_RECEIVED})
SIDE = frozenset({Status.EXCEPTION, Status.EXPIRED})


KINDS = len(ORDER_EVENTS) + len(CORREIOS)


MINUTES = 41  # few enough distinct times to make ties


def _make(raw: int) -> TimelineEntry:
    """One entry from one integer (a single draw per entry keeps generation fast)."""
    raw, kind = divmod(raw, KINDS)
    raw, minute = divmod(raw, MINUTES)
    place, offset = divmod(raw, len(OFFSETS))
    at = (T0 + timedelta(minutes=minute)).astimezone(OFFSETS[offset])
    if kind < len(ORDER_EVENTS):
        status, substatus = ORDER_EVENTS[kind]
        return TimelineEntry("?", None, substatus, status, substatus, None, at)
    code = CORREIOS[kind - len(ORDER_EVENTS)]
    return TimelineEntry(
        "?", "correios", code.code, code.status, code.substatus, None, at, PLACES[place], code.effect
    )


_RAW = st.integers(0, KINDS * MINUTES * len(OFFSETS) * len(PLACES) - 1)


@st.composite
def entries(draw: st.DrawFn, *, corrections: bool = True) -> list[TimelineEntry]:
    """A shipment's events: Correios codes and order events, with ties, duplicates and corrections."""
    made = [_make(raw) for raw in draw(st.lists(_RAW, min_size=1, max_size=14))]
    if not corrections:
        made = [entry for entry in made if entry.effect is None] or [_make(0)]
    # The same carrier event told again, possibly with another UTC offset.
    copies = draw(
        st.lists(st.tuples(st.integers(0, len(made) - 1), st.integers(0, len(OFFSETS) - 1)), max_size=3)
    )
    made += [replace(made[i], occurred_at=made[i].occurred_at.astimezone(OFFSETS[o])) for i, o in copies]
    ids = draw(st.permutations(range(len(made))))  # event ids unrelated to event time
    return [replace(entry, event_id=f"ev-{i:03d}") for entry, i in zip(made, ids, strict=True)]


def state_of(shipment: Shipment) -> tuple[object, ...]:
    """Everything but which copy of a duplicate carrier event the timeline kept."""
    return (
        shipment.status,
        shipment.substatus,
        shipment.carrier,
        shipment.created_at,
        shipment.shipped_at,
        shipment.delivered_at,
        shipment.updated_at,
        tuple((duplicate_key(e), e.withdrawn) for e in shipment.timeline),
    )


def fold(events: list[TimelineEntry]) -> tuple[Shipment, list[Shipment], list[StatusChange | None]]:
    shipment = new_shipment("acme", "AA123456785BR")
    seen, changes = [shipment], []
    for event in events:
        shipment, change = apply(shipment, event)
        seen.append(shipment)
        changes.append(change)
    return shipment, seen, changes


@PROPERTY
@given(data=st.data(), events=entries())
def test_any_arrival_order_gives_the_same_shipment(data: st.DataObject, events: list[TimelineEntry]) -> None:
    shuffled = data.draw(st.permutations(events))
    expected = fold(events)[0]
    for shipment in (fold(shuffled)[0], build_shipment("acme", "AA123456785BR", shuffled)):
        assert state_of(shipment) == state_of(expected)
        if len({duplicate_key(e) for e in events}) == len(events):
            assert shipment == expected  # without copies, even the timeline is the same, entry for entry


@PROPERTY
@given(data=st.data(), events=entries())
def test_applying_the_same_events_again_changes_nothing(
    data: st.DataObject, events: list[TimelineEntry]
) -> None:
    shipment = fold(events)[0]
    for event in data.draw(st.permutations(events)):
        again, change = apply(shipment, event)
        assert again is shipment and change is None


@PROPERTY
@given(events=entries())
def test_changes_are_reported_exactly_when_status_or_substatus_moves(events: list[TimelineEntry]) -> None:
    _, seen, changes = fold(events)
    for (before, after), change in zip(pairwise(seen), changes, strict=True):
        moved = (before.status, before.substatus) != (after.status, after.substatus)
        assert (change is not None) == moved
        if change is not None:
            assert (change.old_status, change.new_status, change.substatus) == (
                before.status,
                after.status,
                after.substatus,
            )


@PROPERTY
@given(events=entries(corrections=False))
def test_in_time_order_a_terminal_state_is_left_only_for_a_return(events: list[TimelineEntry]) -> None:
    in_time = sorted(events, key=order_key)
    statuses = [s.status for s in fold(in_time)[1]]
    for before, after in pairwise(statuses):
        if before in TERMINAL and after is not before:
            assert before is Status.DELIVERED and after in RETURNS


@PROPERTY
@given(data=st.data(), events=entries(corrections=False))
def test_late_arrivals_never_step_back(data: st.DataObject, events: list[TimelineEntry]) -> None:
    """Whatever the arrival order, nothing goes back to before transit; and a terminal state is left
    only by a return after delivery (which may bring along an exception that was waiting after it)
    or because an event dated before the terminal one arrived late."""
    arrivals = data.draw(st.permutations(events))
    seen = fold(arrivals)[1]
    for index, (before, after) in enumerate(pairwise(seen)):
        if before.status not in BEFORE_TRANSIT | SIDE:
            assert after.status not in BEFORE_TRANSIT, "went back to pending/info_received"
        returning = before.status is Status.DELIVERED and arrivals[index].status in RETURNS
        if before.status in TERMINAL and after.status is not before.status and not returning:
            assert before.updated_at is not None
            assert arrivals[index].occurred_at <= before.updated_at, "a later event left a terminal state"


@PROPERTY
@given(events=entries())
def test_a_withdrawn_event_counts_as_if_it_never_happened(events: list[TimelineEntry]) -> None:
    shipment = fold(events)[0]
    standing = [e for e in shipment.timeline if e.counts_for_status]
    without = build_shipment("acme", "AA123456785BR", standing)
    assert (
        without.status,
        without.substatus,
        without.updated_at,
        without.delivered_at,
        without.shipped_at,
    ) == (
        shipment.status,
        shipment.substatus,
        shipment.updated_at,
        shipment.delivered_at,
        shipment.shipped_at,
    )


@PROPERTY
@given(events=entries())
def test_each_step_of_the_incremental_fold_is_the_whole_fold(events: list[TimelineEntry]) -> None:
    """Events in time order take ``apply``'s one-step path: after each, the shipment is the one the whole
    timeline so far gives (corrections included, which refold)."""
    ordered = sorted(events, key=order_key)
    shipment = new_shipment("acme", "AA123456785BR")
    for i, event in enumerate(ordered):
        shipment, _ = apply(shipment, event)
        assert shipment == build_shipment("acme", "AA123456785BR", ordered[: i + 1])
