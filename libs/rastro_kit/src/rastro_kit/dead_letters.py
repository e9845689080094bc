"""Headers of retried and dead-lettered records (DESIGN §3). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

__all__ = [
    "DLQ_HEADERS",
    "dead_letter_headers",
    "header_value",
    "retry_headers",
    "strip_rastro_headers",
]

H_TOPIC = "rastro-dlq-original-topic"
H_PARTITION = "rastro-dlq-original-partition"
H_OFFSET = "rastro-dlq-original-offset"
H_GROUP = "rastro-dlq-consumer-group"
H_ERROR_CLASS = "rastro-dlq-error-class"
H_ERROR_MESSAGE = "rastro-dlq-error-message"
H_ATTEMPTS = "rastro-dlq-attempts"
H_FIRST_FAILED = "rastro-dlq-first-failed-at"
H_LAST_FAILED = "rastro-dlq-last-failed-at"
H_RETRY_NOT_BEFORE = "rastro-retry-not-before"
H_RETRY_TIER = "rastro-retry-tier"
H_REPLAY_ID = "rastro-replay-id"
H_REPLAYED_BY = "rastro-replayed-by"

DLQ_HEADERS = (
    H_TOPIC,
    H_PARTITION,
    H_OFFSET,
    H_GROUP,
    H_ERROR_CLASS,
    H_ERROR_MESSAGE,
    H_ATTEMPTS,
    H_FIRST_FAILED,
    H_LAST_FAILED,
)
# Failure bookkeeping we own; replay headers are kept so a dead letter knows it was replayed.
_OWN = frozenset((*DLQ_HEADERS, H_RETRY_NOT_BEFORE, H_RETRY_TIER))
Headers = Sequence[tuple[str, bytes | None]]
MAX_MESSAGE = 1000


def header_value(headers: Headers, name: str) -> str | None:
    for key, value in reversed(list(headers)):
        if key == name:
            return value.decode("utf-8", "replace") if value is not None else None
    return None


def strip_rastro_headers(headers: Headers) -> list[tuple[str, bytes | None]]:
    return [(k, v) for k, v in headers if k not in _OWN]


def _origin(headers: Headers, topic: str, partition: int, offset: int) -> tuple[str, str, str, str, int]:
    """Where the record first entered this consumer, and when it first failed (kept across retries)."""
    now = datetime.now(UTC).isoformat()
    return (
        header_value(headers, H_TOPIC) or topic,
        header_value(headers, H_PARTITION) or str(partition),
        header_value(headers, H_OFFSET) or str(offset),
        header_value(headers, H_FIRST_FAILED) or now,
        int(header_value(headers, H_ATTEMPTS) or 0),
    )


def dead_letter_headers(
    headers: Headers,
    *,
    topic: str,
    partition: int,
    offset: int,
    group: str,
    reason: str,
    message: str,
) -> list[tuple[str, bytes | None]]:
    o_topic, o_partition, o_offset, first, attempts = _origin(headers, topic, partition, offset)
    now = datetime.now(UTC).isoformat()
    return [
        *strip_rastro_headers(headers),
        (H_TOPIC, o_topic.encode()),
        (H_PARTITION, o_partition.encode()),
        (H_OFFSET, o_offset.encode()),
        (H_GROUP, group.encode()),
        (H_ERROR_CLASS, reason.encode()),
        (H_ERROR_MESSAGE, message[:MAX_MESSAGE].encode("utf-8", "replace")),
        (H_ATTEMPTS, str(attempts + 1).encode()),
        (H_FIRST_FAILED, first.encode()),
        (H_LAST_FAILED, now.encode()),
    ]


def retry_headers(
    headers: Headers,
    *,
    topic: str,
    partition: int,
    offset: int,
    group: str,
    message: str,
    tier: int,
    not_before_ms: int,
) -> list[tuple[str, bytes | None]]:
    base = dead_letter_headers(
        headers,
        topic=topic,
        partition=partition,
        offset=offset,
        group=group,
        reason="transient",
        message=message,
    )
    return [*base, (H_RETRY_TIER, str(tier).encode()), (H_RETRY_NOT_BEFORE, str(not_before_ms).encode())]
