"""The one registry of topics: names, partitions and configs (DESIGN §3).

Service-specific topics (retry tiers, dead letters, replays) are derived from the service name so a
new service needs no edit here beyond ``SERVICES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AUTH_KEYS",
    "DLQ_PATTERN",
    "ETA",
    "INGEST_UPSTREAM",
    "MAIN_TOPICS",
    "ORDERS",
    "POSITIONS",
    "SERVICES",
    "SHIPMENTS",
    "TELEMETRY",
    "TRACKING_NORMALIZED",
    "TRACKING_RAW",
    "TopicSpec",
    "all_topics",
    "dlq_topic",
    "replay_topic",
    "retry_topic",
    "service_of_topic",
]

ORDERS = "rastro.orders.v1"
TRACKING_RAW = "rastro.tracking.raw.v1"
TRACKING_NORMALIZED = "rastro.tracking.normalized.v1"
SHIPMENTS = "rastro.shipments.v1"
ETA = "rastro.eta.v1"
AUTH_KEYS = "rastro.auth.keys.v1"
INGEST_UPSTREAM = "rastro.ingest.upstream.v1"
TELEMETRY = "rastro.telemetry.v1"
POSITIONS = "rastro.positions.v1"

SERVICES = ("ingest", "normalization", "eta", "notification", "dlq-replay")
DLQ_PATTERN = r"^rastro\..*\.dlq$"
WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    description: str = ""


def dlq_topic(service: str) -> str:
    return f"rastro.{service}.dlq"


def retry_topic(service: str, tier: int) -> str:
    return f"rastro.{service}.retry.{tier}"


def replay_topic(service: str) -> str:
    return f"rastro.{service}.replay"


def service_of_topic(topic: str) -> str | None:
    """``rastro.normalization.dlq`` → ``normalization``; None for main topics."""
    parts = topic.split(".")
    if len(parts) >= 3 and parts[0] == "rastro" and parts[2] in {"dlq", "retry", "replay"}:
        return parts[1]
    return None


MAIN_TOPICS: tuple[tuple[str, str], ...] = (
    (ORDERS, "order events, key tenant/order id (or tracking number once known)"),
    (TRACKING_RAW, "carrier events as the carrier said them, key tenant/tracking number"),
    (TRACKING_NORMALIZED, "raw events with the unified status, key tenant/tracking number"),
    (SHIPMENTS, "shipment state changes, key tenant/tracking number"),
    (ETA, "delivery-date predictions, key tenant/tracking number"),
    (INGEST_UPSTREAM, "raw upstream events for ingest to validate: one POST /v1/events event + tenant_id"),
    (TELEMETRY, "own-fleet GPS positions, key tenant/vehicle id (POST /v1/telemetry, or fleet systems)"),
    (POSITIONS, "where own-fleet shipments are, from the geofence processor, key tenant/tracking number"),
)


def all_topics(partitions: int = 12, retry_tiers: int = 3) -> list[TopicSpec]:
    specs = [TopicSpec(name, partitions, {"retention.ms": str(WEEK_MS)}, desc) for name, desc in MAIN_TOPICS]
    specs.append(
        TopicSpec(AUTH_KEYS, 1, {"cleanup.policy": "compact"}, "API key hashes and scopes, key = key id")
    )
    for service in SERVICES:
        specs.append(
            TopicSpec(
                dlq_topic(service),
                partitions,
                {"retention.ms": str(4 * WEEK_MS)},
                f"permanent failures of {service}",
            )
        )
        specs.append(TopicSpec(replay_topic(service), partitions, {}, f"dead letters sent back to {service}"))
        for tier in range(1, retry_tiers + 1):
            specs.append(
                TopicSpec(
                    retry_topic(service, tier),
                    partitions,
                    {},
                    f"transient failures of {service}, tier {tier}",
                )
            )
    return specs
