"""Kafka handlers: each tracking or ETA event becomes one message per matching subscription (event-type
filter, and carrier filter when the subscription has one), and — for a shipment with a registered
recipient — the customer notices of its milestone (``customer_notices``).

The messages are written in the consumer runner's transaction (``ctx.conn``), so the inbox, the
messages and the NOTIFY that wakes the dispatcher commit together; a re-delivered event is skipped by
the inbox, and ``UNIQUE (subscription_id, event_id)`` would catch it anyway.
"""

from __future__ import annotations

from typing import Any

from rastro_events import Envelope, EtaPredicted, NormalizedTrackingEvent
from rastro_events.topics import ETA, TRACKING_NORMALIZED
from rastro_kit.consumer import HandlerContext
from rastro_kit.logs import get_logger
from rastro_kit.service import ConsumerSpec, Runtime
from rastro_notification import customer_notices
from rastro_notification.adapters.repository import enabled_subscriptions, insert_messages
from rastro_notification.domain.event_filter import matches
from rastro_notification.domain.webhook_body import ETA_UPDATED, render_body, tracking_type

__all__ = ["consumers", "on_eta_predicted", "on_tracking_normalized"]

log = get_logger(__name__)


async def on_tracking_normalized(
    ctx: HandlerContext, envelope: Envelope, event: NormalizedTrackingEvent
) -> None:
    data = event.model_dump(mode="json")
    await fan_out(ctx.conn, envelope, tracking_type(event.status.value), data, carrier=event.carrier)
    await customer_notices.on_tracking(ctx.conn, envelope.tenantid, event)


async def on_eta_predicted(ctx: HandlerContext, envelope: Envelope, event: EtaPredicted) -> None:
    data = event.model_dump(mode="json")
    await fan_out(ctx.conn, envelope, ETA_UPDATED, data, carrier=event.lane.carrier)
    await customer_notices.on_eta(ctx.conn, envelope.tenantid, event)


async def fan_out(
    conn: Any, envelope: Envelope, event_type: str, data: dict[str, Any], *, carrier: str | None = None
) -> int:
    """Queue one message per enabled subscription of the tenant whose filter takes ``event_type`` and,
    if it names carriers, ``carrier``."""
    tenant = envelope.tenantid
    wanted = [
        sub_id
        for sub_id, types, carriers in await enabled_subscriptions(conn, tenant)
        if matches(types, event_type) and (carriers is None or carrier in carriers)
    ]
    if not wanted:
        return 0
    body = render_body(event_type, envelope.time, data, tenant_id=tenant, event_id=envelope.id)
    queued = await insert_messages(
        conn,
        wanted,
        tenant_id=tenant,
        event_id=envelope.id,
        event_type=event_type,
        ordering_key=envelope.subject,
        body=body,
    )
    log.info("messages_queued", event_type=event_type, count=queued)
    return queued


def consumers(_: Runtime) -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            topics=[TRACKING_NORMALIZED, ETA],
            handlers={
                NormalizedTrackingEvent.ce_type(): on_tracking_normalized,
                EtaPredicted.ce_type(): on_eta_predicted,
            },
        )
    ]
