"""Telling a subscription's owner that the service disabled it: an ``EndpointDisabled`` event through the
outbox, and an e-mail to the tenant's ``alert_email`` (when set) through the notice queue. Both are
written in the caller's transaction — the one that disabled the subscription — so the alert goes out
exactly when the change commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rastro_events import new_event
from rastro_kit.logs import get_logger
from rastro_kit.outbox import enqueue_event
from rastro_notification.adapters.notice_store import queue_notice
from rastro_notification.events import EndpointDisabled

__all__ = ["OWNER_MILESTONE", "alert_endpoint_disabled"]

log = get_logger(__name__)
OWNER_MILESTONE = "endpoint_disabled"


async def alert_endpoint_disabled(
    conn: Any,
    *,
    sub_id: str,
    tenant_id: str,
    url: str,
    reason: str,
    detail: str,
    failing_since: datetime | None,
    disabled_at: datetime,
) -> None:
    payload = EndpointDisabled(
        subscription_id=sub_id,
        url=url,
        reason=reason,
        detail=detail[:1000],
        failing_since=failing_since,
        disabled_at=disabled_at,
    )
    envelope = new_event(payload, tenant_id=tenant_id, source="/rastro/notification")
    await enqueue_event(conn, EndpointDisabled.topic, envelope)
    settings = await conn.fetchrow(
        "SELECT alert_email, default_locale FROM notice_settings WHERE tenant_id = $1", tenant_id
    )
    if settings is None or settings["alert_email"] is None:
        log.warning("owner_alert_without_email", subscription_id=sub_id, reason=reason)
        return
    await queue_notice(
        conn,
        tenant_id=tenant_id,
        kind="owner",
        tracking_number=None,
        milestone=OWNER_MILESTONE,
        dedupe_key=f"{OWNER_MILESTONE}/{sub_id}/{disabled_at.isoformat()}",
        channel="email",
        address=settings["alert_email"],
        locale=settings["default_locale"],
        context={**payload.model_dump(mode="json"), "tenant_id": tenant_id},
    )
