"""A record read from ``rastro.<service>.dlq``, and what the store learns from it.

Everything comes from the record itself: the failing service from the DLQ topic name, the failure
from the ``rastro-dlq-*`` headers (DESIGN §3), and who it concerns from the CloudEvents value when it
parses — otherwise from the key, whose prefix before ``/`` is the tenant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import rastro_kit.dead_letters as dl
from rastro_events.topics import service_of_topic

__all__ = [
    "DeadLetter",
    "DlqRecord",
    "Headers",
    "Status",
    "header_text",
    "headers_of",
    "parse_dead_letter",
    "searchable_key",
    "service_of_dlq_topic",
    "tenant_of_key",
]

Headers = tuple[tuple[str, bytes | None], ...]  # a header value may be null on the wire
UNKNOWN_REASON = "unknown"
_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_MAX_TEXT = 512
_MAX_MESSAGE = 1000
_INT32, _INT64 = 2**31 - 1, 2**63 - 1  # the column types of partition, offset and attempts


class Status(StrEnum):
    NEW = "new"
    REPLAYED = "replayed"
    FAILED_AFTER_REPLAY = "failed_after_replay"
    PURGED = "purged"


@dataclass(frozen=True)
class DlqRecord:
    """One record of a DLQ topic, bytes as received."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True)
class DeadLetter:
    record: DlqRecord
    service: str
    reason: str
    error_message: str
    original_topic: str
    original_partition: int
    original_offset: int
    consumer_group: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    tenant: str | None
    subject: str | None
    event_type: str | None
    event_id: str | None
    replay_id: str | None
    """Set when this is a replayed dead letter that failed again."""
    key_text: str | None


def parse_dead_letter(record: DlqRecord) -> DeadLetter:
    def header(name: str, limit: int = _MAX_TEXT) -> str | None:
        return _text(header_text(record.headers, name), limit)

    received = _received_at(record.timestamp_ms)
    envelope = _json_object(record.value)
    last_failed = _timestamp(header(dl.H_LAST_FAILED), received)
    return DeadLetter(
        record=record,
        service=service_of_dlq_topic(record.topic),
        reason=header(dl.H_ERROR_CLASS, 100) or UNKNOWN_REASON,
        error_message=header(dl.H_ERROR_MESSAGE, _MAX_MESSAGE) or "",
        original_topic=header(dl.H_TOPIC) or record.topic,
        original_partition=_integer(header(dl.H_PARTITION), record.partition, _INT32),
        original_offset=_integer(header(dl.H_OFFSET), record.offset, _INT64),
        consumer_group=header(dl.H_GROUP),
        attempts=max(_integer(header(dl.H_ATTEMPTS), 1, _INT32), 1),
        first_failed_at=_timestamp(header(dl.H_FIRST_FAILED), last_failed),
        last_failed_at=last_failed,
        tenant=_tenant(envelope.get("tenantid")) or tenant_of_key(record.key),
        subject=_text(envelope.get("subject"), _MAX_TEXT) or _utf8(record.key),
        event_type=_text(envelope.get("type"), _MAX_TEXT) or header("ce_type"),
        event_id=_text(envelope.get("id"), _MAX_TEXT) or header("ce_id"),
        replay_id=header(dl.H_REPLAY_ID),
        key_text=searchable_key(record.key),
    )


def service_of_dlq_topic(topic: str) -> str:
    """``rastro.normalization.dlq`` → ``normalization`` (and a dotted name, which the registry lacks)."""
    return service_of_topic(topic) or topic.removeprefix("rastro.").removesuffix(".dlq")


def tenant_of_key(key: bytes | None) -> str | None:
    """The record key is ``tenant/shipment key``; a key of another shape names no tenant."""
    text = _utf8(key)
    if text is None or "/" not in text:
        return None
    return _tenant(text.split("/", 1)[0])


def _json_object(value: bytes | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        parsed = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # any bytes at all may be a dead letter
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _tenant(value: object) -> str | None:
    return value if isinstance(value, str) and _TENANT.fullmatch(value) else None


def _text(value: object, limit: int) -> str | None:
    # Postgres text cannot hold NUL: one in a header or a JSON string must not make a record unstorable.
    return value[:limit].replace("\x00", "\ufffd") if isinstance(value, str) and value else None


def _utf8(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return _text(raw.decode("utf-8"), _MAX_TEXT)
    except UnicodeDecodeError:
        return None


def searchable_key(key: bytes | None) -> str | None:
    """The key as text for free-text search, whatever its bytes (the bytes themselves are kept apart)."""
    return _text(key.decode("utf-8", "replace"), _MAX_TEXT) if key is not None else None


def _integer(value: str | None, default: int, maximum: int) -> int:
    try:
        parsed = int(value) if value is not None else default
    except ValueError:
        return default
    return parsed if 0 <= parsed <= maximum else default


def _received_at(timestamp_ms: int) -> datetime:
    try:
        return datetime.fromtimestamp(max(timestamp_ms, 0) / 1000, UTC)
    except (OverflowError, OSError, ValueError):  # a producer may set any timestamp
        return datetime.fromtimestamp(0, UTC)


def _timestamp(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return default
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def headers_of(pairs: Sequence[tuple[str, bytes | None]] | None) -> Headers:
    return tuple((name, value) for name, value in (pairs or ()))


def header_text(headers: Headers, name: str) -> str | None:
    """The last value of header ``name`` as text (``rastro_kit.dead_letters.header_value`` fails on null)."""
    for key, value in reversed(headers):
        if key == name:
            return value.decode("utf-8", "replace") if value is not None else None
    return None
