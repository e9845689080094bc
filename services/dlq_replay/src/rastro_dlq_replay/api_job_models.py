"""Bodies of replay by filter, replay jobs, purge by filter and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rastro_dlq_replay.api_deps import aware, no_nul
from rastro_dlq_replay.domain.dead_letter import Status
from rastro_dlq_replay.domain.jobs import AuditEntry, ReplayJob, filter_to_json
from rastro_dlq_replay.domain.query import DeadLetterFilter
from rastro_kit.auth import Principal
from rastro_kit.http import tenant_scope

__all__ = [
    "AuditEntryOut",
    "AuditPage",
    "FilterBody",
    "JobPage",
    "PreviewGroup",
    "PurgeBody",
    "PurgeResult",
    "ReplayJobOut",
    "ReplayPreview",
    "reason_text",
]


class FilterBody(BaseModel):
    """The list's filters, as a body. Every field narrows; none means "any"."""

    model_config = ConfigDict(extra="forbid")

    service: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=100, description="e.g. unmapped_carrier_code")
    tenant: str | None = Field(default=None, max_length=64, description="operators only")
    event_type: str | None = Field(default=None, max_length=200)
    since: datetime | None = Field(default=None, description="last failure at or after")
    until: datetime | None = Field(default=None, description="last failure before")
    q: str | None = Field(default=None, max_length=200, description="free text, as the list's q")
    status: list[Literal["new", "replayed", "failed_after_replay"]] | None = Field(
        default=None, description="default for a replay: new and failed_after_replay; for a purge: all"
    )

    def narrows(self) -> bool:
        return any(v is not None for v in self.model_dump().values())

    def to_filter(self, principal: Principal, default_statuses: tuple[Status, ...]) -> DeadLetterFilter:
        no_nul(self.service, self.reason, self.tenant, self.event_type, self.q)
        return DeadLetterFilter(
            service=self.service or None,
            reason=self.reason or None,
            tenant=tenant_scope(principal, self.tenant or None),
            event_type=self.event_type or None,
            since=aware(self.since),
            until=aware(self.until),
            text=self.q or None,
            statuses=tuple(Status(s) for s in self.status) if self.status else default_statuses,
        )


def reason_text(value: str) -> str:
    if not value.strip():
        raise ValueError("the reason must not be blank")
    return value.strip()


class PurgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: FilterBody
    reason: str = Field(min_length=1, max_length=1000, description="why: kept in the audit trail")
    dry_run: bool = False
    expected_count: int | None = Field(
        default=None, ge=0, description="refuse (409) unless exactly this many match: what you confirmed"
    )

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, value: str) -> str:
        return reason_text(value)


class PreviewGroup(BaseModel):
    service: str
    reason: str
    count: int


class PurgeResult(BaseModel):
    dry_run: bool
    purged: int = Field(description="how many were purged (or would be, in a dry run)")
    groups: list[PreviewGroup]


class ReplayPreview(BaseModel):
    dry_run: Literal[True] = True
    total: int = Field(description="dead letters the filter selects now")
    replayable: int = Field(description="of those, how many have a replay topic (the others are skipped)")
    groups: list[PreviewGroup]
    filter: dict[str, Any]


class ReplayJobOut(BaseModel):
    id: str
    status: Literal["pending", "running", "completed", "cancelled"]
    requested_by: str
    reason: str
    tenant: str | None
    filter: dict[str, Any]
    rate_per_second: float
    total: int
    replayed: int
    skipped: int
    failed: int = Field(description="replays of this job that were dead-lettered again")
    progress: float = Field(description="share of the selected dead letters handled, 0 to 1")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancelled_by: str | None

    @classmethod
    def of(cls, job: ReplayJob) -> ReplayJobOut:
        handled = job.replayed + job.skipped
        return cls(
            id=job.id,
            status=job.status.value,
            requested_by=job.requested_by,
            reason=job.reason,
            tenant=job.tenant,
            filter=filter_to_json(job.filter),
            rate_per_second=job.rate_per_second,
            total=job.total,
            replayed=job.replayed,
            skipped=job.skipped,
            failed=job.failed,
            progress=1.0 if job.total == 0 else round(handled / job.total, 4),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            cancelled_by=job.cancelled_by,
        )


class JobPage(BaseModel):
    items: list[ReplayJobOut]
    next_cursor: str | None


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="the API key id; operator for the operator key")
    action: str
    reason: str | None
    tenant: str | None
    filter: dict[str, Any] | None
    counts: dict[str, int]
    job_id: str | None
    dead_letter_ids: list[str]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            id=entry.id,
            at=entry.at,
            actor=entry.actor,
            action=entry.action.value,
            reason=entry.reason,
            tenant=entry.tenant,
            filter=entry.filter,
            counts=entry.counts,
            job_id=entry.job_id,
            dead_letter_ids=list(entry.dead_letter_ids),
        )


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None
