"""Kafka handlers: each tracking or ETA event becomes one message per matching subscription (event-type
filter, and carrier filter when the subscription has one), and — for a shipment with a registered
recipient — the customer notices of its milestone (``customer_notices``).

The messages are written in the consumer runner's transaction (``ctx.conn``), so the inbox, the
messages and the NOTIFY that wakes the dispatcher commit together; a re-delivered event is skipped by
the inbox, and ``UNIQUE (subscription_id, event_id)`` would catch it anyway.
"""

from __future__ import annotations

from typing import Any

from rastro_events import (
    Envelope,
    EtaPredicted,
    InvoiceIssued,
    NormalizedTrackingEvent,
    OrderCancelled,
    OrderCreated,
    OrderShipped,
)
from rastro_events.topics import ETA, ORDERS, TRACKING_NORMALIZED
from rastro_kit.consumer import HandlerContext
from rastro_kit.logs import get_logger
from rastro_kit.service import ConsumerSpec, Runtime
from rastro_notification import customer_notices
from rastro_notification.batch_fan_out import handle_batch

__all__ = ["consumers", "on_eta_predicted", "on_order", "on_tracking_normalized"]

log = get_logger(__name__)


async def on_tracking_normalized(
    ctx: HandlerContext, envelope: Envelope, event: NormalizedTrackingEvent
) -> None:
    await handle_batch(ctx.conn, [ctx])  # the batch handler's code, for a batch of one


async def on_eta_predicted(ctx: HandlerContext, envelope: Envelope, event: EtaPredicted) -> None:
    await handle_batch(ctx.conn, [ctx])


async def on_order(ctx: HandlerContext, envelope: Envelope, event: Any) -> None:
    """An order event that carries its recipient and a tracking number registers that recipient for
    customer notices, unless the tenant registered one through the API (docs/privacy.md)."""
    await customer_notices.on_order(ctx.conn, envelope.tenantid, event)


_ORDER_EVENTS = (OrderCreated, InvoiceIssued, OrderShipped, OrderCancelled)


def consumers(_: Runtime) -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            topics=[TRACKING_NORMALIZED, ETA, ORDERS],
            batch_handler=handle_batch,
            handlers={
                NormalizedTrackingEvent.ce_type(): on_tracking_normalized,
                EtaPredicted.ce_type(): on_eta_predicted,
                **{m.ce_type(): on_order for m in _ORDER_EVENTS},
            },
        )
    ]
