"""Request and response bodies of the dead-letter API (they document themselves in the OpenAPI)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rastro_dlq_replay.api_job_models import FilterBody, reason_text
from rastro_dlq_replay.domain.display import show_bytes, show_headers, show_text
from rastro_dlq_replay.domain.stored import ReplayEntry, StoredDeadLetter
from rastro_dlq_replay.replays import ReplayOutcome
from rastro_events.personal import scrub_text

__all__ = ["DeadLetterOut", "DeadLetterPage", "ReplayBody", "ReplayResult", "Stats", "StatsGroup"]

BytesEncoding = Literal["json", "utf-8", "base64"]
ID_PATTERN = re.compile(r"[0-9A-Za-z]{1,64}")  # ids are ULIDs


class HeaderOut(BaseModel):
    name: str
    value: str | None
    encoding: BytesEncoding | None


class ReplayOut(BaseModel):
    replay_id: str
    requested_by: str
    reason: str
    target_topic: str
    at: datetime
    failed_at: datetime | None = Field(description="when this replay was dead-lettered again, if it was")
    job_id: str | None = Field(default=None, description="the replay job that sent it, if one did")


class DeadLetterOut(BaseModel):
    id: str
    service: str = Field(description="the service that failed the record")
    reason: str
    error_message: str
    status: Literal["new", "replayed", "failed_after_replay", "purged"]
    original_topic: str
    original_partition: int
    original_offset: int
    consumer_group: str | None
    key: str | None
    key_encoding: BytesEncoding | None = Field(description="utf-8, or base64 when the key is not text")
    value: Any = Field(description="the record value: parsed JSON, else text, else base64")
    value_encoding: BytesEncoding | None
    headers: list[HeaderOut]
    tenant: str | None
    subject: str | None
    event_type: str | None
    event_id: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    replay_count: int = Field(description="replays of this dead letter that were dead-lettered again")
    purged_at: datetime | None
    replays: list[ReplayOut] | None = Field(
        default=None, description="the audit trail (one dead letter only)"
    )

    @classmethod
    def of(cls, letter: StoredDeadLetter, replays: list[ReplayEntry] | None = None) -> DeadLetterOut:
        key, value = show_text(letter.key), show_bytes(letter.value)
        return cls(
            id=letter.id,
            service=letter.service,
            reason=letter.reason,
            error_message=scrub_text(letter.error_message),
            status=letter.status.value,
            original_topic=letter.original_topic,
            original_partition=letter.original_partition,
            original_offset=letter.original_offset,
            consumer_group=letter.consumer_group,
            key=key.value,
            key_encoding=key.encoding,
            value=value.value,
            value_encoding=value.encoding,
            headers=[HeaderOut(**h) for h in show_headers(letter.headers)],
            tenant=letter.tenant,
            subject=letter.subject,
            event_type=letter.event_type,
            event_id=letter.event_id,
            attempts=letter.attempts,
            first_failed_at=letter.first_failed_at,
            last_failed_at=letter.last_failed_at,
            replay_count=letter.replay_count,
            purged_at=letter.purged_at,
            replays=None if replays is None else [ReplayOut(**_replay_fields(r)) for r in replays],
        )


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class StatsGroup(BaseModel):
    key: str | None
    count: int


class Stats(BaseModel):
    total: int
    groups: list[StatsGroup]


class ReplayBody(BaseModel):
    """Either ``ids`` (replayed at once) or a ``filter`` (a replay job, rate-limited and resumable)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[str, Field(pattern=f"^{ID_PATTERN.pattern}$")]] | None = Field(
        default=None, min_length=1, description="dead letter ids"
    )
    filter: FilterBody | None = Field(default=None, description="replay what this selects, as a job")
    reason: str = Field(min_length=1, max_length=1000, description="why: kept in the audit trail")
    dry_run: bool = False
    rate_per_second: float | None = Field(
        default=None, gt=0, description="a job's pace (default RASTRO_DLQ_REPLAY_DEFAULT_REPLAY_RATE)"
    )

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, value: str) -> str:
        return reason_text(value)

    @model_validator(mode="after")
    def _ids_or_filter(self) -> ReplayBody:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or a filter")
        if self.ids is not None and self.rate_per_second is not None:
            raise ValueError("rate_per_second applies to a replay by filter only")
        return self


class SkippedOut(BaseModel):
    id: str
    reason: Literal["not_found", "purged", "unknown_service"]


class ReplayedOut(BaseModel):
    id: str
    replay_id: str | None
    topic: str


class ReplayResult(BaseModel):
    replayed: int = Field(description="how many were sent back (or would be, in a dry run)")
    skipped: list[SkippedOut]
    dry_run: bool
    replay_ids: list[str]
    replays: list[ReplayedOut]

    @classmethod
    def of(cls, outcome: ReplayOutcome) -> ReplayResult:
        return cls(
            replayed=len(outcome.replayed),
            skipped=[SkippedOut(id=s.id, reason=s.reason.value) for s in outcome.skipped],
            dry_run=outcome.dry_run,
            replay_ids=[r.replay_id for r in outcome.replayed if r.replay_id is not None],
            replays=[
                ReplayedOut(id=r.dead_letter_id, replay_id=r.replay_id, topic=r.topic)
                for r in outcome.replayed
            ],
        )


def _replay_fields(entry: ReplayEntry) -> dict[str, Any]:
    return {
        "replay_id": entry.replay_id,
        "requested_by": entry.requested_by,
        "reason": entry.reason,
        "target_topic": entry.target_topic,
        "at": entry.at,
        "failed_at": entry.failed_at,
        "job_id": entry.job_id,
    }
