"""The notification service's own Prometheus metrics, beside the kit's ``rastro_webhook_attempts_total``
(by outcome) and ``rastro_webhook_latency_seconds`` (DESIGN §9). Gauges are refreshed from Postgres by
the housekeeping loop every ``metrics_interval_s``, so every instance reports the shared queue.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = [
    "CIRCUITS_OPEN",
    "ENDPOINTS_AUTO_DISABLED",
    "ENDPOINTS_DISABLED",
    "NOTICES_PENDING",
    "PURGED",
    "QUEUE_DEPTH",
    "QUEUE_OLDEST_DUE_SECONDS",
]

QUEUE_DEPTH = Gauge("rastro_webhook_queue_depth", "Webhook messages pending (waiting or being sent)")
QUEUE_OLDEST_DUE_SECONDS = Gauge(
    "rastro_webhook_queue_oldest_due_seconds",
    "How long the longest-due pending message of an enabled, closed-circuit endpoint has waited",
)
ENDPOINTS_DISABLED = Gauge("rastro_webhook_endpoints_disabled", "Subscriptions currently disabled")
CIRCUITS_OPEN = Gauge("rastro_webhook_circuits_open", "Enabled subscriptions whose circuit is open")
ENDPOINTS_AUTO_DISABLED = Counter(
    "rastro_webhook_endpoints_auto_disabled_total",
    "Subscriptions the service disabled, by reason",
    ["reason"],
)
NOTICES_PENDING = Gauge("rastro_notification_notices_pending", "Customer messages and alerts not yet sent")
PURGED = Counter("rastro_notification_purged_total", "Rows removed by the retention purge", ["table"])
