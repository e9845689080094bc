"""Sales channel and shipping cost through normalization's real handlers, on a real Postgres: which value
a shipment keeps when order events tell it with and without a tracking number, in either order, and
the KPI counts that read them."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from rastro_events import OrderCreated, OrderShipped, Payload, RawTrackingEvent, encode_event, new_event
from rastro_events.payloads import Money
from rastro_kit.consumer import HandlerContext
from rastro_kit.testing import migrated_schema
from rastro_normalization.handlers import HANDLERS
from rastro_normalization.kpis.repository import KpiQuery, kpi_counts
from rastro_normalization.kpis.windows import KpiWindow

pytestmark = pytest.mark.integration
NOVEMBER = KpiWindow(date(2026, 11, 1), date(2026, 11, 30))


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[Any]:
    async with migrated_schema(
        database_url, "kpifacts_", ("rastro_normalization.migrations",), max_size=2
    ) as pool:
        yield pool


async def handle(pool: Any, tenant: str, *payloads: Payload) -> None:
    """Each event through its handler, in its own transaction, as the consumer runs it."""
    async with pool.acquire() as conn:
        for payload in payloads:
            envelope = new_event(payload, tenant_id=tenant, source="/test")
            value, key = encode_event(envelope), envelope.subject.encode()
            record = ConsumerRecord("t", 0, 0, 0, 0, key, value, None, len(key), len(value), [])
            async with conn.transaction():
                ctx = HandlerContext(conn, "normalization", record, envelope, payload)
                await HANDLERS[envelope.type](ctx, envelope, payload)


async def facts(pool: Any, tenant: str, tracking: str) -> tuple[str | None, Decimal | None, str | None]:
    row = await pool.fetchrow(
        "SELECT sales_channel, shipping_cost_amount, shipping_cost_currency FROM shipments"
        " WHERE tenant_id = $1 AND tracking_number = $2",
        tenant,
        tracking,
    )
    return row["sales_channel"], row["shipping_cost_amount"], row["shipping_cost_currency"]


def at(day: int, hour: int = 10) -> datetime:
    return datetime.fromisoformat(f"2026-11-{day:02d}T{hour:02d}:00:00-03:00")


def brl(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="BRL")


def shipped(order: str, tracking: str, day: int, **facts: Any) -> OrderShipped:
    return OrderShipped(
        order_id=order, tracking_number=tracking, carrier="Correios", occurred_at=at(day), **facts
    )


def raw(tracking: str, code: str, day: int) -> RawTrackingEvent:
    return RawTrackingEvent(
        tracking_number=tracking, carrier="correios", status_code=code, occurred_at=at(day, 15)
    )


async def test_order_facts_reach_the_shipment_whatever_the_order_of_events(pool: Any) -> None:
    tenant = f"f{secrets.token_hex(4)}"
    # told before the order shipped (no tracking number yet), then shipped: the shipment inherits them
    await handle(
        pool, tenant,
        OrderCreated(order_id="O1", occurred_at=at(2, 8), sales_channel=" web ", shipping_cost=brl("12.50")),
        shipped("O1", "AA000000001BR", 2),
        raw("AA000000001BR", "PO-01", 3),
        raw("AA000000001BR", "BDE-01", 5),
    )  # fmt: skip
    assert await facts(pool, tenant, "AA000000001BR") == ("web", Decimal("12.5000"), "BRL")
    # the shipment's own event first, a late order.created after: it only fills what is missing
    await handle(
        pool, tenant,
        shipped("O2", "AA000000002BR", 2, shipping_cost=brl("15.00")),
        OrderCreated(order_id="O2", occurred_at=at(1), sales_channel="app", shipping_cost=brl("9.99")),
    )  # fmt: skip
    assert await facts(pool, tenant, "AA000000002BR") == ("app", Decimal("15.0000"), "BRL")
    # a later event naming the tracking number replaces the value (the carrier's invoice, say)
    await handle(
        pool,
        tenant,
        shipped("O2", "AA000000002BR", 3, shipping_cost=Money(amount=Decimal(3), currency="USD")),
    )
    assert await facts(pool, tenant, "AA000000002BR") == ("app", Decimal("3.0000"), "USD")
    # events that say nothing leave the facts alone
    await handle(pool, tenant, shipped("O2", "AA000000002BR", 4), raw("AA000000002BR", "PO-01", 4))
    assert await facts(pool, tenant, "AA000000002BR") == ("app", Decimal("3.0000"), "USD")

    query = KpiQuery(tenant_id=tenant, group_by="channel", period="week", window=NOVEMBER)
    async with pool.acquire() as conn:
        created, delivered = await kpi_counts(conn, query)
    assert {k: c.shipments for k, c in created.items()} == {"web": 1, "app": 1}
    assert list(delivered) == ["web"]
    web = delivered["web"]
    assert (web.delivered, web.costed, web.cost_total, web.currencies) == (1, 1, Decimal("12.5"), ("BRL",))
