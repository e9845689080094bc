"""What a subscriber receives: the event type names and the JSON body (Standard Webhooks' shape).

::

    {"type": "tracking.delivered",
     "timestamp": "2026-11-23T17:05:11.120000+00:00",
     "data": {...the event payload..., "tenant_id": "acme", "event_id": "01JD5Z8Q3T6W0K2N9V7R4B1C8E"}}

``timestamp`` is when the event happened (the CloudEvents ``time``), not when it was sent. The body is
rendered once, when the message is created, and the same bytes go out on every retry and resend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rastro_notification.domain.event_filter import TRACKING_STATUSES

__all__ = ["ETA_UPDATED", "render_body", "tracking_type"]

ETA_UPDATED = "eta.updated"


def tracking_type(status: str) -> str:
    """The subscriber-facing type of a normalized tracking event: ``tracking.<status>``."""
    if status not in TRACKING_STATUSES:
        raise ValueError(f"unknown shipment status {status!r}")
    return f"tracking.{status}"


def render_body(
    event_type: str, timestamp: datetime, data: Mapping[str, Any], *, tenant_id: str, event_id: str
) -> bytes:
    """The webhook body as UTF-8 JSON; ``tenant_id`` and ``event_id`` are added to ``data``."""
    if timestamp.tzinfo is None:
        raise ValueError("an event timestamp carries its offset")
    body = {
        "type": event_type,
        "timestamp": timestamp.isoformat(),
        "data": {**data, "tenant_id": tenant_id, "event_id": event_id},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
