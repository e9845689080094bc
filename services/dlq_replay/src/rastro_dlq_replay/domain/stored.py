"""A dead letter as the store holds it, and the replays of it (the audit trail)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rastro_dlq_replay.domain.dead_letter import Headers, Status

__all__ = ["ReplayEntry", "StoredDeadLetter"]


@dataclass(frozen=True)
class StoredDeadLetter:
    id: str
    service: str
    reason: str
    error_message: str
    status: Status
    dlq_topic: str
    dlq_partition: int
    dlq_offset: int
    original_topic: str
    original_partition: int
    original_offset: int
    consumer_group: str | None
    key: bytes | None
    value: bytes | None
    headers: Headers
    tenant: str | None
    subject: str | None
    event_type: str | None
    event_id: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    replay_count: int
    stored_at: datetime
    purged_at: datetime | None
    purged_by: str | None


@dataclass(frozen=True)
class ReplayEntry:
    replay_id: str
    dead_letter_id: str
    requested_by: str
    reason: str
    target_topic: str
    at: datetime
    failed_at: datetime | None
    job_id: str | None = None  # the replay job that sent it, if one did
