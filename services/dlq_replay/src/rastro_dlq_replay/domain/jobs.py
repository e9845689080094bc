"""Replay jobs: a filter's dead letters sent back at a bounded rate, resumable after a crash.

A job is created with the ids its filter selects at that moment, numbered in replay order (oldest
failure first). A worker takes them a chunk at a time; each chunk's replays, the items' outcomes and the
job's cursor are committed in one transaction, so after a crash the job goes on after the last committed
chunk: no dead letter of the job is replayed twice, none is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from rastro_dlq_replay.domain.dead_letter import Status
from rastro_dlq_replay.domain.query import DeadLetterFilter

__all__ = [
    "REPLAYABLE",
    "AuditAction",
    "AuditEntry",
    "JobStatus",
    "ReplayJob",
    "chunk_size",
    "filter_from_json",
    "filter_to_json",
    "pause_s",
]

# What a replay by filter picks unless the filter names statuses: what has not been replayed yet, or
# came back failed. (Replaying a replayed one again is harmless, but rarely what an SRE means.)
REPLAYABLE = (Status.NEW, Status.FAILED_AFTER_REPLAY)
MAX_CHUNK = 200
CHUNK_SECONDS = 0.5  # a chunk holds about this much of the rate's work


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (JobStatus.PENDING, JobStatus.RUNNING)


class AuditAction(StrEnum):
    REPLAY = "replay"  # by ids, at once
    REPLAY_JOB_CREATED = "replay_job_created"
    REPLAY_JOB_FINISHED = "replay_job_finished"
    REPLAY_JOB_CANCELLED = "replay_job_cancelled"
    PURGE = "purge"


@dataclass(frozen=True)
class ReplayJob:
    id: str
    requested_by: str
    reason: str
    tenant: str | None  # the scope it was created in; None: an operator's, over every tenant
    filter: DeadLetterFilter
    rate_per_second: float
    status: JobStatus
    total: int
    replayed: int
    skipped: int
    failed: int  # replays of this job that were dead-lettered again (known once they come back)
    cursor: int  # the last item handled, in replay order (0: none yet)
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancelled_by: str | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str  # the API key id ("operator" for the operator key), never the key
    action: AuditAction
    reason: str | None
    tenant: str | None
    filter: dict[str, Any] | None
    counts: dict[str, int]
    job_id: str | None
    dead_letter_ids: tuple[str, ...]


def chunk_size(rate_per_second: float) -> int:
    """How many dead letters one transaction replays: about half a second of the rate, 1 to 200."""
    return max(1, min(MAX_CHUNK, int(rate_per_second * CHUNK_SECONDS)))


def pause_s(handled: int, rate_per_second: float, elapsed_s: float) -> float:
    """How long to wait after a chunk of ``handled`` that took ``elapsed_s`` to stay within the rate."""
    if handled <= 0 or rate_per_second <= 0:
        return 0.0
    return max(0.0, handled / rate_per_second - elapsed_s)


def filter_to_json(selection: DeadLetterFilter) -> dict[str, Any]:
    """The filter as kept with a job and in the audit trail (only the fields that narrow)."""
    out: dict[str, Any] = {}
    for name in ("service", "reason", "tenant", "event_type", "text"):
        value = getattr(selection, name)
        if value is not None:
            out[name] = value
    for name in ("since", "until"):
        moment = getattr(selection, name)
        if moment is not None:
            out[name] = moment.isoformat()
    out["statuses"] = [str(s) for s in selection.statuses]
    return out


def filter_from_json(raw: dict[str, Any]) -> DeadLetterFilter:
    def moment(name: str) -> datetime | None:
        value = raw.get(name)
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    statuses = tuple(Status(s) for s in raw.get("statuses") or ()) or REPLAYABLE
    return DeadLetterFilter(
        service=raw.get("service"),
        reason=raw.get("reason"),
        tenant=raw.get("tenant"),
        event_type=raw.get("event_type"),
        since=moment("since"),
        until=moment("until"),
        text=raw.get("text"),
        statuses=statuses,
    )
