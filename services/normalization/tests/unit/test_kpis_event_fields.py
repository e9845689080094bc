"""The optional order-event fields the KPIs read (``sales_channel``, ``shipping_cost``): a money amount
stays a decimal string end to end, old readers and old events are unaffected, and ingest accepts them
from ``POST /v1/events`` and from CSV columns (both validate with the same models)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import BaseModel, ConfigDict

from rastro_events import OrderCreated, OrderShipped, decode_event, encode_event, new_event
from rastro_events.payloads import Money
from rastro_ingest.domain.csv_rows import RowDefaults, resolve_columns, row_to_event
from rastro_ingest.domain.events_in import Accepted, Rejected, read_event

pytestmark = pytest.mark.unit
SHIPPED = {
    "type": "order.shipped",
    "order_id": "PED-1",
    "tracking_number": "AA123456785BR",
    "carrier": "correios",
    "occurred_at": "2026-11-23T14:05:11-03:00",
}


def test_a_shipping_cost_travels_as_a_decimal_string() -> None:
    payload = OrderShipped.model_validate(
        {**SHIPPED, "sales_channel": "marketplace", "shipping_cost": {"amount": "12.30", "currency": "BRL"}}
    )
    record = encode_event(new_event(payload, tenant_id="acme", source="/test"))
    assert json.loads(record)["data"]["shipping_cost"] == {"amount": "12.30", "currency": "BRL"}
    _, decoded = decode_event(record)
    assert isinstance(decoded, OrderShipped) and decoded.shipping_cost == Money(
        amount=Decimal("12.30"), currency="BRL"
    )
    assert decoded.sales_channel == "marketplace"


def test_events_without_the_new_fields_read_as_before_and_old_readers_ignore_them() -> None:
    old = OrderCreated.model_validate({"order_id": "PED-1", "occurred_at": "2026-11-23T14:05:11-03:00"})
    assert (old.sales_channel, old.shipping_cost) == (None, None)

    class OrderCreatedBefore(BaseModel):  # the model as it was: unknown fields are ignored
        model_config = ConfigDict(frozen=True, extra="ignore")
        order_id: str
        occurred_at: datetime

    new = OrderCreated(
        order_id="PED-2",
        occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
        sales_channel="web",
        shipping_cost=Money(amount=Decimal("9.90"), currency="BRL"),
    )
    assert OrderCreatedBefore.model_validate(new.model_dump(mode="json")).order_id == "PED-2"


@pytest.mark.parametrize(
    "cost",
    [{"amount": "-1.00", "currency": "BRL"}, {"amount": "1.00", "currency": "real"}, {"amount": "1.00001",
     "currency": "BRL"}, {"amount": "abc", "currency": "BRL"}, {"amount": "1.00"}],
)  # fmt: skip
def test_ingest_rejects_a_malformed_cost_naming_the_field(cost: dict[str, str]) -> None:
    result = read_event(0, {**SHIPPED, "shipping_cost": cost})
    assert isinstance(result, Rejected)
    assert all(e["field"].startswith("shipping_cost.") for e in result.errors), result.errors


def test_ingest_accepts_the_new_fields_on_posted_order_events() -> None:
    created = {"type": "order.created", "order_id": "PED-9", "occurred_at": "2026-11-20T10:00:00-03:00"}
    for item in (
        {**created, "sales_channel": "app", "shipping_cost": {"amount": "19.9", "currency": "BRL"}},
        {**SHIPPED, "shipping_cost": {"amount": 7.5, "currency": "USD"}},  # a JSON number is read as decimal
    ):
        result = read_event(0, item)
        assert isinstance(result, Accepted), result
        assert result.payload.shipping_cost is not None
    assert read_event(0, {**created, "sales_channel": "x" * 65}).__class__ is Rejected


def test_csv_columns_carry_the_channel_and_the_cost() -> None:
    header = [
        "type",
        "order_id",
        "occurred_at",
        "sales_channel",
        "shipping_cost.amount",
        "shipping_cost.currency",
    ]
    columns = resolve_columns(header, {})
    cells = ["order.created", "PED-3", "2026-11-20T10:00:00-03:00", "loja", "12.50", "BRL"]
    event = row_to_event(cells, columns, RowDefaults())
    assert event["shipping_cost"] == {"amount": "12.50", "currency": "BRL"}
    result = read_event(0, event)
    assert isinstance(result, Accepted)
    assert result.payload.sales_channel == "loja"
