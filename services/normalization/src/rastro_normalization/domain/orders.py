"""Order milestones as timeline entries (DESIGN §5): order created / invoice issued -> info_received,
shipped -> label created, cancelled -> cancelled."""

from __future__ import annotations

from rastro_events import InvoiceIssued, OrderCancelled, OrderCreated, OrderShipped, Status

__all__ = ["ORDER_MILESTONES", "order_milestone"]

OrderEvent = OrderCreated | InvoiceIssued | OrderShipped | OrderCancelled

ORDER_MILESTONES: dict[str, tuple[str, Status, str, str, str]] = {
    # event name: (code, status, substatus, pt-BR, en)
    "order.created": (
        "ORDER-CREATED",
        Status.INFO_RECEIVED,
        "info_received.order_created",
        "Pedido criado",
        "Order created",
    ),
    "invoice.issued": (
        "INVOICE-ISSUED",
        Status.INFO_RECEIVED,
        "info_received.invoice_issued",
        "Nota fiscal emitida",
        "Invoice issued",
    ),
    "order.shipped": (
        "ORDER-SHIPPED",
        Status.INFO_RECEIVED,
        "info_received.label_created",
        "Pedido despachado, aguardando coleta da transportadora",
        "Order shipped, awaiting carrier pickup",
    ),
    "order.cancelled": (
        "ORDER-CANCELLED",
        Status.CANCELLED,
        "cancelled.by_shipper",
        "Pedido cancelado",
        "Order cancelled",
    ),
}


def order_milestone(event: OrderEvent) -> tuple[str, Status, str, dict[str, str]]:
    code, status, substatus, pt, en = ORDER_MILESTONES[event.event_name]
    return code, status, substatus, {"pt-BR": pt, "en": en}
