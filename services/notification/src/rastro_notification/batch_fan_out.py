"""The consumer's batch handler: a partition batch's events fanned out to subscriptions, set-based.

Run one by one, the handlers read the tenant's subscriptions, insert the event's messages and NOTIFY
the dispatcher: three statements per event. Here the batch reads the subscriptions of every tenant in
it once, inserts every message in one statement (in record order, so a shipment's messages keep their
order) and NOTIFYs once. Customer notices and order events then go through the per-record code, in
record order. The effects are those of the handlers run one by one (a test holds the two together):
messages and notices are independent, and each keeps its own order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rastro_events import EtaPredicted, NormalizedTrackingEvent
from rastro_kit.consumer import HandlerContext
from rastro_kit.logs import get_logger
from rastro_notification import customer_notices
from rastro_notification.adapters import customer_store
from rastro_notification.adapters.message_batch import (
    MessageRow,
    enabled_subscriptions_of,
    insert_message_rows,
)
from rastro_notification.adapters.repository import new_id
from rastro_notification.domain.event_filter import matches
from rastro_notification.domain.milestones import milestone_for
from rastro_notification.domain.webhook_body import ETA_UPDATED, render_body, tracking_type

__all__ = ["handle_batch", "message_type"]

log = get_logger(__name__)


def message_type(event: Any) -> tuple[str, str | None, str | None] | None:
    """The webhook event type, carrier and substatus of an event that becomes messages; None for others."""
    if isinstance(event, NormalizedTrackingEvent):
        return tracking_type(event.status.value), event.carrier, event.substatus
    if isinstance(event, EtaPredicted):
        return ETA_UPDATED, event.lane.carrier, None
    return None


async def handle_batch(conn: Any, contexts: Sequence[HandlerContext]) -> None:
    subscriptions = await enabled_subscriptions_of(conn, {ctx.tenant_id for ctx in contexts})
    rows: list[MessageRow] = []
    for ctx in contexts:
        kind = message_type(ctx.payload)
        envelope, tenant = ctx.envelope, ctx.tenant_id
        if kind is None or envelope is None:
            continue
        event_type, carrier, substatus = kind
        wanted = [
            s.id
            for s in subscriptions.get(tenant, ())
            if matches(s.event_types, event_type, substatus) and (s.carriers is None or carrier in s.carriers)
        ]
        if not wanted:
            continue
        data = ctx.payload.model_dump(mode="json")
        body = render_body(event_type, envelope.time, data, tenant_id=tenant, event_id=envelope.id).decode()
        rows += [
            MessageRow(new_id("msg"), sub, tenant, envelope.id, event_type, envelope.subject, body)
            for sub in wanted
        ]
    queued = await insert_message_rows(conn, rows)
    if queued:
        log.info("messages_queued", records=len(contexts), count=queued)
    # Customer notices: most shipments have no recipient registered, so one query tells which do,
    # instead of one lookup per event. An order event of the batch may register one on the way.
    reachable = await customer_store.shipments_with_recipient(
        conn, [(ctx.tenant_id, ctx.payload.tracking_number) for ctx in contexts if _may_notify(ctx.payload)]
    )
    for ctx in contexts:
        event = ctx.payload
        if isinstance(event, NormalizedTrackingEvent | EtaPredicted):
            if (ctx.tenant_id, event.tracking_number) not in reachable:
                continue
            if isinstance(event, NormalizedTrackingEvent):
                await customer_notices.on_tracking(conn, ctx.tenant_id, event)
            else:
                await customer_notices.on_eta(conn, ctx.tenant_id, event)
        elif await customer_notices.on_order(conn, ctx.tenant_id, event):
            reachable.add((ctx.tenant_id, event.tracking_number))


def _may_notify(event: Any) -> bool:
    """Whether the event could make a customer notice, given a recipient."""
    if isinstance(event, NormalizedTrackingEvent):
        return milestone_for(event.status.value) is not None
    return isinstance(event, EtaPredicted)
