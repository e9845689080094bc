"""From shipment events to customer notices (seed 000, "comunicação proativa"), in the consumer's
transaction: a milestone of a shipment with a registered recipient queues one notice per channel the
recipient can be reached on (e-mail if an address is known; messaging if a phone number is known and
the tenant configured a provider). The notices table's unique key makes a milestone queue once.

Where the recipient comes from: the tenant registers it per shipment with
``PUT /v1/notifications/recipients/{tracking_number}`` (typically when the order ships), or an
``order.created`` / ``order.shipped`` event with a tracking number carries it in ``recipient``
(``on_order``; a recipient registered through the API wins). Events of a shipment without a recipient
make no notice.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from rastro_events import EtaPredicted, NormalizedTrackingEvent, OrderCreated, OrderShipped
from rastro_kit.logs import get_logger
from rastro_notification.adapters import customer_store
from rastro_notification.adapters.notice_store import queue_notice
from rastro_notification.domain.milestones import (
    ETA_CHANGED,
    dedupe_key,
    eta_change,
    milestone_for,
    pick_locale,
)
from rastro_notification.domain.recipients import InvalidAddress, normalize_email, normalize_phone

__all__ = ["on_eta", "on_order", "on_tracking"]

log = get_logger(__name__)


async def on_order(conn: Any, tenant_id: str, event: Any) -> bool:
    """Adopt the recipient an order event carries; False when there is none to adopt."""
    if not isinstance(event, OrderCreated | OrderShipped) or not event.tracking_number:
        return False
    recipient = event.recipient
    if recipient is None:
        return False
    email, phone = _checked(normalize_email, recipient.email), _checked(normalize_phone, recipient.phone)
    if email is None and phone is None:
        return False  # nobody to notify: nothing personal is kept either
    values = {"name": recipient.name, "email": email, "phone": phone, "document": recipient.document}
    saved = await customer_store.put_recipient(conn, tenant_id, event.tracking_number, values, source="order")
    return saved is not None


def _checked(normalize: Any, value: str | None) -> str | None:
    try:
        return normalize(value) if value else None
    except InvalidAddress:
        return None


async def on_tracking(conn: Any, tenant_id: str, event: NormalizedTrackingEvent) -> int:
    milestone = milestone_for(event.status.value)
    if milestone is None:
        return 0
    recipient = await customer_store.get_recipient(conn, tenant_id, event.tracking_number)
    if recipient is None:
        return 0
    location = event.location
    context = {
        "tracking_number": event.tracking_number,
        "carrier": event.carrier,
        "status": event.status.value,
        "substatus": event.substatus,
        "description": event.description,
        "descriptions": event.descriptions,
        "occurred_at": event.occurred_at.isoformat(),
        "city": location.city if location else None,
        "state": location.state if location else None,
        "expected_date": _iso(recipient["last_expected_date"]),
    }
    key = dedupe_key(event.tracking_number, milestone)
    return await _queue(conn, tenant_id, recipient, milestone, key, context)


async def on_eta(conn: Any, tenant_id: str, event: EtaPredicted) -> int:
    recipient = await customer_store.get_recipient(conn, tenant_id, event.tracking_number)
    if recipient is None:
        return 0
    previous: date | None = recipient["last_expected_date"]
    if previous == event.expected_date:
        return 0
    await customer_store.remember_eta(conn, tenant_id, event.tracking_number, event.expected_date)
    if not eta_change(previous, event.expected_date):
        return 0  # the first ETA seen is the baseline, not a change
    context = {
        "tracking_number": event.tracking_number,
        "carrier": event.lane.carrier,
        "expected_date": event.expected_date.isoformat(),
        "previous_expected_date": _iso(previous),
        "promise_date": event.promise_date.isoformat(),
    }
    key = dedupe_key(event.tracking_number, ETA_CHANGED, event.expected_date)
    return await _queue(conn, tenant_id, recipient, ETA_CHANGED, key, context)


async def _queue(
    conn: Any,
    tenant_id: str,
    recipient: dict[str, Any],
    milestone: str,
    key: str,
    context: dict[str, Any],
) -> int:
    settings = await customer_store.get_settings(conn, tenant_id)
    locale = pick_locale(recipient["locale"], settings["default_locale"])
    description = (context.get("descriptions") or {}).get(locale)
    context = {**context, "recipient_name": recipient["name"], "tenant_id": tenant_id}
    if description:
        context["description"] = description
    channels = []
    if recipient["email"]:
        channels.append(("email", recipient["email"]))
    if recipient["phone"] and settings["messaging_url"]:
        channels.append(("messaging", recipient["phone"]))
    queued = 0
    for channel, address in channels:
        queued += await queue_notice(
            conn,
            tenant_id=tenant_id,
            kind="customer",
            tracking_number=recipient["tracking_number"],
            milestone=milestone,
            dedupe_key=key,
            channel=channel,
            address=address,
            locale=locale,
            context=context,
        )
    if queued:
        log.info("customer_notices_queued", milestone=milestone, count=queued)
    return queued


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
