"""Replaying dead letters: each goes back to ``rastro.<service>.replay`` through the outbox, in the same
transaction that records the replay in the audit trail and marks the dead letter replayed. Either all
of a request's replays are committed and will be published, or none is.

A replay job (``replay_jobs.py``) calls ``replay_selected`` once per chunk of its ids, inside the
transaction that also advances the job's cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from rastro_dlq_replay.adapters import audit, repository
from rastro_dlq_replay.domain.jobs import AuditAction
from rastro_dlq_replay.domain.replay import ReplayPlan, Skipped, build_replay, plan_replay
from rastro_dlq_replay.domain.stored import ReplayEntry, StoredDeadLetter
from rastro_events import new_event_id
from rastro_kit.logs import get_logger
from rastro_kit.outbox import enqueue_record

__all__ = ["ReplayOutcome", "ReplayRequest", "Replayed", "replay_dead_letters", "replay_selected"]

log = get_logger(__name__)


@dataclass(frozen=True)
class ReplayRequest:
    ids: tuple[str, ...]
    reason: str
    requested_by: str
    tenant: str | None  # None: an operator, who may replay any tenant's dead letters
    dry_run: bool = False
    job_id: str | None = None


@dataclass(frozen=True)
class Replayed:
    dead_letter_id: str
    replay_id: str | None  # None in a dry run
    topic: str


@dataclass(frozen=True)
class ReplayOutcome:
    replayed: tuple[Replayed, ...]
    skipped: tuple[Skipped, ...]
    dry_run: bool


async def replay_dead_letters(pool: Any, request: ReplayRequest) -> ReplayOutcome:
    async with pool.acquire() as conn, conn.transaction():
        outcome = await replay_selected(conn, request)
        if not request.dry_run:
            await audit.append_audit(
                conn,
                actor=request.requested_by,
                action=AuditAction.REPLAY,
                reason=request.reason,
                tenant=request.tenant,
                counts={"replayed": len(outcome.replayed), "skipped": len(outcome.skipped)},
                dead_letter_ids=[r.dead_letter_id for r in outcome.replayed],
            )
    if not request.dry_run:
        log.info(
            "dead_letters_replayed",
            replayed=len(outcome.replayed),
            skipped=len(outcome.skipped),
            requested_by=request.requested_by,
            reason=request.reason,
        )
    return outcome


async def replay_selected(conn: Any, request: ReplayRequest) -> ReplayOutcome:
    """Replay ``request.ids`` inside the caller's transaction."""
    found = await repository.fetch_for_replay(conn, request.ids, request.tenant, lock=not request.dry_run)
    by_id = {letter.id: letter for letter in found}
    plan: ReplayPlan = plan_replay(request.ids, by_id)
    replayed = [await _replay_one(conn, by_id[i], request) for i in plan.replay]
    return ReplayOutcome(tuple(replayed), plan.skipped, request.dry_run)


async def _replay_one(conn: Any, letter: StoredDeadLetter, request: ReplayRequest) -> Replayed:
    replay_id = new_event_id()
    record = build_replay(
        service=letter.service,
        key=letter.key,
        value=letter.value,
        headers=letter.headers,
        replay_id=replay_id,
        replayed_by=request.requested_by,
    )
    if request.dry_run:
        return Replayed(letter.id, None, record.topic)
    entry = ReplayEntry(
        replay_id=replay_id,
        dead_letter_id=letter.id,
        requested_by=request.requested_by,
        reason=request.reason,
        target_topic=record.topic,
        at=datetime.now(UTC),
        failed_at=None,
        job_id=request.job_id,
    )
    await repository.record_replay(conn, entry)
    # Kafka allows null header values and the relay sends them as such; the kit's signature says bytes.
    headers = cast("Sequence[tuple[str, bytes]]", record.headers)
    await enqueue_record(conn, record.topic, record.key, record.value, headers)
    return Replayed(letter.id, replay_id, record.topic)
