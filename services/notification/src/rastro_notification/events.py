"""Events the notification service publishes itself (through its outbox).

``rastro.notification.endpoints.v1`` carries ``rastro.notification.endpoint_disabled.v1``: a subscription
was disabled by the service (``410 Gone``, or failing continuously for ``disable_after_s``), so its owner
(or an integration-health dashboard) can react. Key ``tenant/subscription id``. The topic is declared
here and created at start-up (``ENDPOINTS_TOPIC_SPEC``); it belongs to this service alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rastro_events import Payload
from rastro_events.topics import TopicSpec

__all__ = ["ENDPOINTS_TOPIC", "ENDPOINTS_TOPIC_SPEC", "EndpointDisabled"]

ENDPOINTS_TOPIC = "rastro.notification.endpoints.v1"
ENDPOINTS_TOPIC_SPEC = TopicSpec(
    ENDPOINTS_TOPIC,
    3,
    {"retention.ms": str(28 * 24 * 3600 * 1000)},
    "subscriptions the notification service disabled, key tenant/subscription id",
)


class EndpointDisabled(Payload):
    event_name: ClassVar[str] = "notification.endpoint_disabled"
    topic: ClassVar[str] = ENDPOINTS_TOPIC
    subscription_id: str
    url: str
    reason: str  # endpoint_gone | failing_continuously
    detail: str
    failing_since: datetime | None = None
    disabled_at: datetime

    def shipment_key(self) -> str:
        return self.subscription_id
