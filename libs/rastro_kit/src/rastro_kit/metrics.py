"""The Prometheus metrics every service exposes (names are a contract: DESIGN §9)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "CONSUMER_LAG",
    "CONSUMER_PARTITIONS",
    "DLQ_MESSAGES",
    "EVENTS_CONSUMED",
    "EVENT_HANDLE_SECONDS",
    "HTTP_REQUESTS",
    "OUTBOX_PENDING",
    "WEBHOOK_ATTEMPTS",
    "WEBHOOK_LATENCY",
]

EVENTS_CONSUMED = Counter(
    "rastro_events_consumed_total", "Records consumed, by outcome", ["service", "topic", "outcome"]
)
EVENT_HANDLE_SECONDS = Histogram(
    "rastro_event_handle_seconds",
    "Time to handle one record",
    ["service", "topic"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CONSUMER_LAG = Gauge("rastro_consumer_lag", "Records behind the log end", ["service", "topic", "partition"])
CONSUMER_PARTITIONS = Gauge(
    "rastro_consumer_assigned_partitions",
    "Partitions this instance holds in its consumer group (instances of a service share them)",
    ["service", "group"],
)
DLQ_MESSAGES = Counter("rastro_dlq_messages_total", "Records dead-lettered", ["service", "reason"])
OUTBOX_PENDING = Gauge("rastro_outbox_pending", "Outbox rows not yet published", ["service"])
HTTP_REQUESTS = Counter("rastro_http_requests_total", "HTTP requests", ["service", "route", "code"])
WEBHOOK_ATTEMPTS = Counter("rastro_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])
WEBHOOK_LATENCY = Histogram(
    "rastro_webhook_latency_seconds",
    "Webhook request latency",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
