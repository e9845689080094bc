"""Where a record that failed goes: a retry tier, or the dead-letter topic (DESIGN §3).

Both are outbox rows written in the consumer's transaction, with the key and value exactly as
received and the ``rastro-dlq-*`` / ``rastro-retry-*`` headers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord

from rastro_events.topics import dlq_topic, retry_topic
from rastro_kit import dead_letters as dl
from rastro_kit.errors import Reason
from rastro_kit.logs import get_logger
from rastro_kit.metrics import DLQ_MESSAGES
from rastro_kit.outbox import enqueue_record

__all__ = ["FailureRouter", "error_message", "not_before"]

log = get_logger(__name__)


@dataclass(frozen=True)
class FailureRouter:
    service: str
    group_id: str
    retry_delays_s: Sequence[float]

    async def dead_letter(
        self, conn: Any, record: ConsumerRecord[bytes, bytes], reason: str, message: str
    ) -> str:
        headers = dl.dead_letter_headers(
            record.headers,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            group=self.group_id,
            reason=reason,
            message=message,
        )
        await enqueue_record(conn, dlq_topic(self.service), record.key, record.value, headers)
        DLQ_MESSAGES.labels(self.service, reason).inc()
        log.warning(
            "dead_lettered",
            reason=reason,
            error_message=message[:200],
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        return f"dead_letter:{reason}"

    async def retry(self, conn: Any, record: ConsumerRecord[bytes, bytes], message: str) -> str:
        """The next retry tier, or the DLQ as ``retries_exhausted`` after the last one."""
        tier = int(dl.header_value(record.headers, dl.H_RETRY_TIER) or 0) + 1
        if tier > len(self.retry_delays_s):
            return await self.dead_letter(conn, record, Reason.RETRIES_EXHAUSTED, message)
        not_before_ms = int((time.time() + self.retry_delays_s[tier - 1]) * 1000)
        headers = dl.retry_headers(
            record.headers,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            group=self.group_id,
            message=message,
            tier=tier,
            not_before_ms=not_before_ms,
        )
        await enqueue_record(conn, retry_topic(self.service, tier), record.key, record.value, headers)
        log.info("retry_scheduled", tier=tier, error_message=message[:200])
        return "retried"


def not_before(record: ConsumerRecord[bytes, bytes]) -> float:
    """When a record from a retry tier is due (epoch seconds; 0 when it carries no delay)."""
    value = dl.header_value(record.headers or (), dl.H_RETRY_NOT_BEFORE)
    return int(value) / 1000 if value else 0.0


def error_message(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__
