"""What an order's later documents are matched by: its invoice (number, NF-e access key) and its tracking
number, one row per order in ``shipment_refs`` (migration 0009).

Every path that accepts order events (``POST /v1/events``, CSV imports, the upstream topic) calls
``remember_refs`` in the transaction that accepts them, so an EDI occurrence file (OCOREN names the
invoice, not the tracking number) imported afterwards finds the shipment by ``find_by_invoice``. Only
order events count; a batch of tracking events costs one ``isinstance`` per event and no statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rastro_events import Envelope, InvoiceIssued, OrderCreated, OrderShipped, Payload
from rastro_events.payloads import OrderCancelled
from rastro_ingest.domain.edi.model import strip_leading_zeros

__all__ = [
    "InvoiceRef",
    "ShipmentRef",
    "find_by_invoice",
    "invoice_number_of_key",
    "order_payloads",
    "remember_refs",
]

_ORDER_EVENTS = (OrderCreated, InvoiceIssued, OrderShipped, OrderCancelled)
_ORDER_TYPES = {m.ce_type(): m for m in _ORDER_EVENTS}
_UPSERT = """
INSERT INTO shipment_refs AS r (tenant_id, order_id, tracking_number, carrier, invoice_number, invoice_key)
SELECT $1, o, t, c, n, k
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS x(o, t, c, n, k)
ON CONFLICT (tenant_id, order_id) DO UPDATE SET
    tracking_number = coalesce(excluded.tracking_number, r.tracking_number),
    carrier = coalesce(excluded.carrier, r.carrier),
    invoice_number = coalesce(excluded.invoice_number, r.invoice_number),
    invoice_key = coalesce(excluded.invoice_key, r.invoice_key),
    updated_at = now()
"""


@dataclass(frozen=True)
class InvoiceRef:
    """What a line of an EDI file names its shipment by."""

    invoice_number: str | None = None
    invoice_key: str | None = None
    tracking_number: str | None = None


@dataclass(frozen=True)
class ShipmentRef:
    order_id: str
    tracking_number: str | None
    carrier: str | None


def _number(number: str | None) -> str | None:
    """An invoice number as compared: without leading zeros (``"000123"`` -> ``"123"``), as EDI reads it."""
    return strip_leading_zeros(number, none_if_zero=True) if number is not None else None


def invoice_number_of_key(key: str | None) -> str | None:
    """The invoice number inside a 44-digit NF-e access key (digits 26-34), or None."""
    if key is None or len(key) != 44 or not key.isdigit():
        return None
    return strip_leading_zeros(key[25:34], none_if_zero=True)


def order_payloads(envelopes: Iterable[Envelope]) -> list[Payload]:
    """The order events among ``envelopes``, as payloads (a CSV chunk holds envelopes)."""
    return [_ORDER_TYPES[e.type].model_validate(e.data) for e in envelopes if e.type in _ORDER_TYPES]


async def remember_refs(conn: Any, tenant_id: str, payloads: Iterable[Payload]) -> int:
    """Record the order ids, invoices and tracking numbers these accepted events name; rows touched."""
    rows: dict[str, list[str | None]] = {}
    for p in payloads:
        if not isinstance(p, _ORDER_EVENTS):
            continue
        row = rows.setdefault(p.order_id, [None, None, None, None])
        values = (
            p.tracking_number,
            p.carrier,
            _number(p.invoice_number) or invoice_number_of_key(p.invoice_key)
            if isinstance(p, InvoiceIssued)
            else None,
            p.invoice_key if isinstance(p, InvoiceIssued) else None,
        )
        for i, value in enumerate(values):
            if value:
                row[i] = value  # the batch's latest word on each field
    if not rows:
        return 0
    orders = list(rows)
    await conn.execute(_UPSERT, tenant_id, orders, *([rows[o][i] for o in orders] for i in range(4)))
    return len(orders)


async def find_by_invoice(conn: Any, tenant_id: str, refs: Sequence[InvoiceRef]) -> list[list[ShipmentRef]]:
    """Per ref, the orders it names (none, one, or several when an invoice number is ambiguous)."""
    numbers = [_number(r.invoice_number) or invoice_number_of_key(r.invoice_key) for r in refs]
    keys = [r.invoice_key for r in refs]
    rows = await conn.fetch(
        "SELECT order_id, tracking_number, carrier, invoice_number, invoice_key FROM shipment_refs"
        " WHERE tenant_id = $1 AND (invoice_key = ANY($2::text[]) OR invoice_number = ANY($3::text[]))",
        tenant_id,
        sorted({k for k in keys if k}),
        sorted({n for n in numbers if n}),
    )
    by_key: dict[str, list[ShipmentRef]] = {}
    by_number: dict[str, list[ShipmentRef]] = {}
    for r in rows:
        ref = ShipmentRef(r["order_id"], r["tracking_number"], r["carrier"])
        if r["invoice_key"]:
            by_key.setdefault(r["invoice_key"], []).append(ref)
        if r["invoice_number"]:
            by_number.setdefault(r["invoice_number"], []).append(ref)
    found: list[list[ShipmentRef]] = []
    for key, number in zip(keys, numbers, strict=True):
        # The access key is exact; the number alone may repeat across series and issuers.
        found.append(by_key.get(key, []) if key and key in by_key else by_number.get(number or "", []))
    return found
