"""Replay by filter: create a job, and the worker that runs jobs a chunk at a time within their rate.

Exactly once in effect, whatever crashes: one transaction per chunk locks the job, replays the chunk's
dead letters (audit rows in ``replays`` + outbox rows to ``rastro.<service>.replay``), records each
item's outcome and moves the job's cursor past them. A crash before the commit leaves no trace of the
chunk; after it, the chunk is done for good. On restart the worker finds the job still ``running`` and
goes on from the cursor. (The outbox relay publishes at least once; a re-published replay carries the
same event id, which the target's inbox skips.)
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from rastro_dlq_replay.adapters import audit, jobs
from rastro_dlq_replay.adapters.repository import count_by_service_and_reason
from rastro_dlq_replay.domain.jobs import AuditAction, ReplayJob, chunk_size, filter_to_json, pause_s
from rastro_dlq_replay.domain.query import DeadLetterFilter
from rastro_dlq_replay.replays import ReplayRequest, replay_selected
from rastro_events import new_event_id
from rastro_events.topics import SERVICES
from rastro_kit.logs import get_logger

__all__ = ["JobRequest", "Preview", "ReplayWorker", "create_replay_job", "preview_replay", "run_chunk"]

log = get_logger(__name__)


@dataclass(frozen=True)
class JobRequest:
    selection: DeadLetterFilter  # the caller's tenant scope already applied
    reason: str
    requested_by: str
    tenant: str | None
    rate_per_second: float


@dataclass(frozen=True)
class Preview:
    total: int
    replayable: int
    groups: tuple[tuple[str, str, int], ...]  # service, reason, count


async def preview_replay(pool: Any, selection: DeadLetterFilter) -> Preview:
    """A dry run: what a job for ``selection`` would replay now, grouped by service and reason."""
    async with pool.acquire() as conn:
        groups = await count_by_service_and_reason(conn, selection)
    total = sum(n for _, _, n in groups)
    replayable = sum(n for service, _, n in groups if service in SERVICES)
    return Preview(total, replayable, tuple(groups))


async def create_replay_job(pool: Any, request: JobRequest) -> str:
    job_id = new_event_id()
    async with pool.acquire() as conn, conn.transaction():
        total = await jobs.create_job(
            conn,
            job_id=job_id,
            requested_by=request.requested_by,
            reason=request.reason,
            tenant=request.tenant,
            selection=request.selection,
            rate_per_second=request.rate_per_second,
        )
        await audit.append_audit(
            conn,
            actor=request.requested_by,
            action=AuditAction.REPLAY_JOB_CREATED,
            reason=request.reason,
            tenant=request.tenant,
            filter_=filter_to_json(request.selection),
            counts={"total": total},
            job_id=job_id,
        )
    log.info("replay_job_created", job_id=job_id, total=total, requested_by=request.requested_by)
    return job_id


async def run_chunk(pool: Any, job_id: str) -> tuple[ReplayJob, int] | None:
    """Replay the job's next chunk in one transaction. The job as it stands afterwards and how many
    dead letters the chunk handled, or None when another worker holds it or it is no longer active."""
    async with pool.acquire() as conn, conn.transaction():
        job = await jobs.lock_active_job(conn, job_id)
        if job is None:
            return None
        items = await jobs.items_after(conn, job.id, job.cursor, chunk_size(job.rate_per_second))
        if not items:
            await jobs.finish_job(conn, job.id)
            await audit.append_job_audit(conn, job, AuditAction.REPLAY_JOB_FINISHED, actor=job.requested_by)
            log.info("replay_job_finished", job_id=job.id, replayed=job.replayed, skipped=job.skipped)
        else:
            await _replay_items(conn, job, items)
        after = await jobs.fetch_job(conn, job.id, None)
    assert after is not None  # locked by this transaction: it cannot have gone
    return after, len(items)


async def _replay_items(conn: Any, job: ReplayJob, items: list[tuple[int, str]]) -> None:
    seq_of = {dead_letter_id: seq for seq, dead_letter_id in items}
    outcome = await replay_selected(
        conn,
        ReplayRequest(
            ids=tuple(seq_of),
            reason=job.reason,
            requested_by=job.requested_by,
            tenant=job.tenant,
            job_id=job.id,
        ),
    )
    results = [(seq_of[r.dead_letter_id], "replayed", r.replay_id) for r in outcome.replayed]
    results += [(seq_of[s.id], str(s.reason), None) for s in outcome.skipped]
    await jobs.record_chunk(
        conn, job.id, results, replayed=len(outcome.replayed), skipped=len(outcome.skipped)
    )


class ReplayWorker:
    """Runs replay jobs one after another, oldest first; woken by a new job or every poll interval."""

    def __init__(self, pool: Any, *, poll_interval_s: float = 1.0) -> None:
        self._pool, self._poll = pool, poll_interval_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            async with self._pool.acquire() as conn, conn.transaction():
                job_id = await jobs.next_active_job_id(conn)
            if job_id is not None and await self._run_job(job_id):
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll)
            except TimeoutError:
                pass

    async def _run_job(self, job_id: str) -> bool:
        """Run ``job_id`` to its end; False when another worker holds it."""
        while True:
            started = time.monotonic()
            ran = await run_chunk(self._pool, job_id)
            if ran is None:
                return False
            job, handled = ran
            if not job.status.active:
                return True
            await asyncio.sleep(pause_s(handled, job.rate_per_second, time.monotonic() - started))
