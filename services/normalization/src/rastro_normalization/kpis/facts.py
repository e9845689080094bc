"""Order facts the KPIs group and weigh by: the sales channel and the shipping cost of a shipment.

They come on ``order.created`` / ``order.shipped`` (both optional) and are written beside the fold of
the order event, in its transaction, after its shipment rows are locked. Which value a shipment keeps:

- an event that names the tracking number sets the shipment's value (events of one shipment share a
  partition, so the latest one wins); without a value it fills a gap from the order's earlier facts;
- an event without a tracking number (an order not yet shipped) is kept per order in ``order_facts``
  and only fills gaps of the order's shipments, so a late ``order.created`` never overwrites what
  ``order.shipped`` said about the shipment itself.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rastro_events import OrderCreated, OrderShipped

__all__ = ["record_order_facts"]

_REMEMBER = """
INSERT INTO order_facts (tenant_id, order_id, sales_channel, shipping_cost_amount, shipping_cost_currency)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (tenant_id, order_id) DO UPDATE SET
    sales_channel = coalesce(EXCLUDED.sales_channel, order_facts.sales_channel),
    shipping_cost_amount = coalesce(EXCLUDED.shipping_cost_amount, order_facts.shipping_cost_amount),
    shipping_cost_currency = CASE WHEN EXCLUDED.shipping_cost_amount IS NULL
        THEN order_facts.shipping_cost_currency ELSE EXCLUDED.shipping_cost_currency END,
    updated_at = now()
"""
_FILL_ORDER_SHIPMENTS = """
UPDATE shipments SET
    sales_channel = coalesce(sales_channel, $3),
    shipping_cost_amount = coalesce(shipping_cost_amount, $4),
    shipping_cost_currency = CASE WHEN shipping_cost_amount IS NULL THEN $5 ELSE shipping_cost_currency END
WHERE tenant_id = $1 AND order_id = $2
  AND ((sales_channel IS NULL AND $3::text IS NOT NULL)
       OR (shipping_cost_amount IS NULL AND $4::numeric IS NOT NULL))
"""
# Written only when something changes: most order events carry nothing new for an existing row.
_SET_SHIPMENT = """
WITH f AS (
    SELECT $3::text AS channel, $4::numeric AS amount, $5::text AS currency
), v AS (
    SELECT s.tenant_id, s.tracking_number,
           coalesce(f.channel, s.sales_channel, o.sales_channel) AS channel,
           CASE WHEN f.amount IS NOT NULL THEN f.amount
                WHEN s.shipping_cost_amount IS NOT NULL THEN s.shipping_cost_amount
                ELSE o.shipping_cost_amount END AS amount,
           CASE WHEN f.amount IS NOT NULL THEN f.currency
                WHEN s.shipping_cost_amount IS NOT NULL THEN s.shipping_cost_currency
                ELSE o.shipping_cost_currency END AS currency
    FROM shipments s CROSS JOIN f
    LEFT JOIN order_facts o ON o.tenant_id = s.tenant_id AND o.order_id = $6
    WHERE s.tenant_id = $1 AND s.tracking_number = $2
)
UPDATE shipments s SET sales_channel = v.channel, shipping_cost_amount = v.amount,
                       shipping_cost_currency = v.currency
FROM v
WHERE s.tenant_id = v.tenant_id AND s.tracking_number = v.tracking_number
  AND (s.sales_channel IS DISTINCT FROM v.channel OR s.shipping_cost_amount IS DISTINCT FROM v.amount
       OR s.shipping_cost_currency IS DISTINCT FROM v.currency)
"""


async def record_order_facts(conn: Any, tenant_id: str, event: Any) -> None:
    """Store what an order event says of channel and cost (see the module docstring for precedence)."""
    channel: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    if isinstance(event, OrderCreated | OrderShipped):
        channel = (event.sales_channel.strip() or None) if event.sales_channel else None
        if event.shipping_cost is not None:
            amount, currency = event.shipping_cost.amount, event.shipping_cost.currency
    values = (channel, amount, currency)
    if event.tracking_number is None:
        if channel is None and amount is None:
            return
        await conn.execute(_REMEMBER, tenant_id, event.order_id, *values)
        await conn.execute(_FILL_ORDER_SHIPMENTS, tenant_id, event.order_id, *values)
        return
    await conn.execute(_SET_SHIPMENT, tenant_id, event.tracking_number, *values, event.order_id)
