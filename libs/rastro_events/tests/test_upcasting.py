"""Several majors of one event: upcasting stored records, downcasting for dual publishing, migration windows.

A test-only event, ``test.parcel``, has its ``weight`` retyped between majors: a decimal string of
kilograms in v1, an integer of grams in v2 (a breaking change, hence a new major and topic).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import Field

from rastro_events import Payload, SchemaViolation, decode_event, encode_event, new_event
from rastro_events.migrations import EventMigrations, MigrationWindow, encode_in_window
from rastro_events.registry import (
    majors_of,
    model_for,
    parse_ce_type,
    register,
    register_downcaster,
    register_upcaster,
    unregister,
)
from rastro_events.upcasting import ConversionError, convert, in_majors, older_majors_read_as, upcast_event

pytestmark = pytest.mark.unit


class ParcelV1(Payload):
    event_name: ClassVar[str] = "test.parcel"
    major: ClassVar[int] = 1
    topic: ClassVar[str] = "rastro.test.parcel.v1"
    parcel_id: str
    weight: str = Field(pattern=r"^\d+(\.\d{1,3})?$", description="kilograms, a decimal string")

    def shipment_key(self) -> str:
        return self.parcel_id


class ParcelV2(Payload):
    event_name: ClassVar[str] = "test.parcel"
    major: ClassVar[int] = 2
    topic: ClassVar[str] = "rastro.test.parcel.v2"
    parcel_id: str
    weight: int = Field(ge=0, description="grams")

    def shipment_key(self) -> str:
        return self.parcel_id


def kg_to_grams(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "weight": int(Decimal(data["weight"]) * 1000)}


def grams_to_kg(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "weight": format(Decimal(data["weight"]) / 1000, "f")}


@pytest.fixture
def v1_only() -> Iterator[None]:
    """The code before the change: only v1 is known."""
    register(ParcelV1)
    yield
    unregister(ParcelV1)


@pytest.fixture
def both() -> Iterator[None]:
    """The code after the change: v2, v1 kept for stored records, the upcaster and the downcaster."""
    register(ParcelV1)
    register(ParcelV2)
    register_upcaster("test.parcel", 1, kg_to_grams)
    register_downcaster("test.parcel", 2, grams_to_kg)
    yield
    unregister(ParcelV1, ParcelV2)


def test_a_stored_v1_reads_as_v2(both: None) -> None:
    stored = encode_event(new_event(ParcelV1(parcel_id="P1", weight="1.25"), tenant_id="acme", source="/t"))
    envelope, v1 = decode_event(stored)
    upcast_envelope, v2 = upcast_event(envelope, v1, 2)
    assert v2 == ParcelV2(parcel_id="P1", weight=1250)
    assert upcast_envelope.type == "rastro.test.parcel.v2"
    assert upcast_envelope.dataschema == "https://rastro.dev/schemas/test.parcel/v2.json"
    assert upcast_envelope.data == {"parcel_id": "P1", "weight": 1250}
    assert (upcast_envelope.id, upcast_envelope.subject, upcast_envelope.time) == (
        envelope.id,
        "acme/P1",
        envelope.time,
    )


def test_registry_holds_both_majors(both: None) -> None:
    assert majors_of("test.parcel") == (1, 2)
    assert model_for("rastro.test.parcel.v1") is ParcelV1 and model_for("rastro.test.parcel.v2") is ParcelV2
    with pytest.raises(ValueError, match="already read"):
        register(type("Impostor", (ParcelV2,), {}))


def test_registry_forgets_a_test_type() -> None:
    register(ParcelV1)
    unregister(ParcelV1)
    assert model_for("rastro.test.parcel.v1") is None and majors_of("test.parcel") == ()


@settings(max_examples=50, deadline=None)
@given(grams=st.integers(min_value=0, max_value=10**9))
@example(grams=0)
@example(grams=10_000)  # a round number of kilograms: "10", never "1E+1"
def test_downcast_gives_back_what_a_v1_producer_sent(grams: int) -> None:
    register(ParcelV1)
    register(ParcelV2)
    register_upcaster("test.parcel", 1, kg_to_grams)
    register_downcaster("test.parcel", 2, grams_to_kg)
    try:
        v1 = convert(ParcelV2(parcel_id="P", weight=grams), 1)
        assert isinstance(v1, ParcelV1)
        assert convert(v1, 2) == ParcelV2(parcel_id="P", weight=grams)  # upcast ∘ downcast = identity
        assert convert(convert(v1, 2), 1) == v1  # and downcast ∘ upcast, on what v1 producers send
    finally:
        unregister(ParcelV1, ParcelV2)


def test_an_upcaster_that_fails_is_a_schema_violation(both: None) -> None:
    stored = encode_event(new_event(ParcelV1(parcel_id="P1", weight="1.25"), tenant_id="acme", source="/t"))
    envelope, v1 = decode_event(stored)
    unregister(ParcelV2)
    register(ParcelV2)
    register_upcaster("test.parcel", 1, lambda d: {**d, "weight": -1})  # v2 rejects a negative weight
    with pytest.raises(SchemaViolation, match=r"cannot be read as v2"):
        upcast_event(envelope, v1, 2)


def test_forms_in_a_window(both: None) -> None:
    v2 = ParcelV2(parcel_id="P", weight=2500)
    assert in_majors(v2, (1, 2)) == [ParcelV1(parcel_id="P", weight="2.5"), v2]
    v1 = ParcelV1(parcel_id="P", weight="0.5")
    assert in_majors(v1, (1, 2)) == [v1, ParcelV2(parcel_id="P", weight=500)]


def test_old_code_publishes_only_what_it_knows(v1_only: None) -> None:
    v1 = ParcelV1(parcel_id="P", weight="0.5")
    assert in_majors(v1, (1, 2)) == [v1]


def test_dual_publishing_without_a_downcaster_fails_loudly() -> None:
    register(ParcelV1)
    register(ParcelV2)
    try:
        with pytest.raises(ConversionError, match="no downcaster"):
            in_majors(ParcelV2(parcel_id="P", weight=1), (1, 2))
    finally:
        unregister(ParcelV1, ParcelV2)


def test_encode_in_window_one_event_two_records(both: None) -> None:
    window = EventMigrations.parse("test.parcel:1->2")
    records = encode_in_window(ParcelV2(parcel_id="P9", weight=750), window, tenant_id="acme", source="/t")
    assert [r.topic for r in records] == ["rastro.test.parcel.v1", "rastro.test.parcel.v2"]
    assert len({r.id for r in records}) == 1 and {r.key for r in records} == {b"acme/P9"}
    (e1, p1), (e2, p2) = (decode_event(r.value) for r in records)
    assert (e1.type, p1) == ("rastro.test.parcel.v1", ParcelV1(parcel_id="P9", weight="0.75"))
    assert (e2.type, p2) == ("rastro.test.parcel.v2", ParcelV2(parcel_id="P9", weight=750))
    assert e1.time == e2.time
    outside = encode_in_window(
        ParcelV2(parcel_id="P9", weight=1), EventMigrations(), tenant_id="a", source="/t"
    )
    assert [r.topic for r in outside] == ["rastro.test.parcel.v2"]


def test_windows_parse_and_reject() -> None:
    plan = EventMigrations.parse(" tracking.raw:1->2 , test.parcel: 2 -> 3")
    assert plan.windows == {
        "tracking.raw": MigrationWindow("tracking.raw", 1, 2),
        "test.parcel": MigrationWindow("test.parcel", 2, 3),
    }
    assert str(plan) == "tracking.raw:1->2,test.parcel:2->3"
    assert not EventMigrations.parse("") and plan
    for bad in ("tracking.raw", "tracking.raw:2->1", "tracking.raw:0->1", "a:1->2,a:1->3", "A:1->2"):
        with pytest.raises(ValueError):
            EventMigrations.parse(bad)


def test_what_is_published_in_a_window() -> None:
    plan = EventMigrations.parse("test.parcel:1->2")
    assert plan.majors_to_publish("test.parcel", 2) == (1, 2)
    assert plan.majors_to_publish("test.parcel", 1) == (1, 2)
    assert plan.majors_to_publish("test.parcel", 3) == (3,)  # outside the window: as it is
    assert plan.majors_to_publish("tracking.raw", 1) == (1,)


def test_the_twin_rule() -> None:
    plan = EventMigrations.parse("test.parcel:1->2")
    v1_reader = {"rastro.test.parcel.v1"}
    assert plan.is_twin("rastro.test.parcel.v2", v1_reader)  # the v1 twin reaches it: skip
    assert not plan.is_twin("rastro.test.parcel.v3", v1_reader)  # outside the window: a dead letter
    assert not plan.is_twin("rastro.test.parcel.v2", {"rastro.order.created.v1"})  # reads no twin
    assert not plan.is_twin("rastro.test.parcel.v1", {"rastro.test.parcel.v2"})  # no upcaster: no v1
    assert not EventMigrations().is_twin("rastro.test.parcel.v2", v1_reader)  # after the window
    assert not plan.is_twin("not-a-type", v1_reader)


def test_older_majors_a_consumer_reads(both: None) -> None:
    assert older_majors_read_as({"rastro.test.parcel.v2"}) == {"rastro.test.parcel.v1": 2}
    assert older_majors_read_as({"rastro.test.parcel.v1"}) == {}
    assert older_majors_read_as({"rastro.test.parcel.v1", "rastro.test.parcel.v2"}) == {}
    assert older_majors_read_as({"rastro.tracking.raw.v1", "whatever"}) == {}


def test_parse_ce_type() -> None:
    assert parse_ce_type("rastro.tracking.raw.v12") == ("tracking.raw", 12)
    for bad in ("tracking.raw.v1", "rastro.v1", "rastro.x.vx", "rastro.x.1"):
        assert parse_ce_type(bad) is None
