"""``/v1/replay-jobs``: follow and cancel replays by filter (created by ``POST /v1/dead-letters/replay``).

A tenant key sees its own tenant's jobs; the operator key sees every job.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from rastro_dlq_replay.adapters import audit, jobs
from rastro_dlq_replay.api_deps import Manager, Pool, Reader
from rastro_dlq_replay.api_job_models import JobPage, ReplayJobOut
from rastro_dlq_replay.api_models import ID_PATTERN
from rastro_dlq_replay.domain.jobs import AuditAction
from rastro_kit.http import ProblemError, tenant_scope

__all__ = ["load_job", "router"]

router = APIRouter(prefix="/v1/replay-jobs", tags=["replay jobs"])


async def load_job(pool: Any, job_id: str, tenant: str | None) -> ReplayJobOut:
    if not ID_PATTERN.fullmatch(job_id):
        raise ProblemError(404, "No such replay job.", type_="not-found")
    async with pool.acquire() as conn:
        job = await jobs.fetch_job(conn, job_id, tenant)
    if job is None:
        raise ProblemError(404, "No such replay job.", type_="not-found")
    return ReplayJobOut.of(job)


@router.get("", summary="Replay jobs, newest first")
async def list_jobs(
    pool: Pool,
    principal: Reader,
    status: Literal["pending", "running", "completed", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=64, description="next_cursor of the previous page")
    ] = None,
) -> JobPage:
    async with pool.acquire() as conn:
        found = await jobs.fetch_jobs(conn, tenant_scope(principal, None), status, cursor, limit + 1)
    items = found[:limit]
    next_cursor = items[-1].id if len(found) > limit else None
    return JobPage(items=[ReplayJobOut.of(j) for j in items], next_cursor=next_cursor)


@router.get("/{job_id}", summary="One replay job: its filter, progress and counts")
async def show_job(pool: Pool, principal: Reader, job_id: str) -> ReplayJobOut:
    return await load_job(pool, job_id, tenant_scope(principal, None))


@router.post(
    "/{job_id}/cancel",
    summary="Stop a replay job after its current chunk",
    responses={409: {"description": "the job has completed or was cancelled already"}},
)
async def cancel_job(pool: Pool, principal: Manager, job_id: str) -> ReplayJobOut:
    tenant = tenant_scope(principal, None)
    current = await load_job(pool, job_id, tenant)  # 404 when it is not the caller's
    async with pool.acquire() as conn, conn.transaction():
        job = await jobs.cancel_job(conn, job_id, tenant, principal.key_id)
        if job is not None:
            await audit.append_job_audit(conn, job, AuditAction.REPLAY_JOB_CANCELLED, actor=principal.key_id)
    if job is None:
        raise ProblemError(409, f"The job is {current.status} already.", type_="job-not-active")
    return ReplayJobOut.of(job)
