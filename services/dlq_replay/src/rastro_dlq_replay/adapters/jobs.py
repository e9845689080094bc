"""Replay jobs in Postgres: the job row (filter, counts, cursor) and the ids it selected, in order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rastro_dlq_replay.adapters.filter_sql import condition_for
from rastro_dlq_replay.domain.jobs import JobStatus, ReplayJob, filter_from_json, filter_to_json
from rastro_dlq_replay.domain.query import DeadLetterFilter

__all__ = [
    "cancel_job",
    "create_job",
    "fetch_job",
    "fetch_jobs",
    "finish_job",
    "items_after",
    "lock_active_job",
    "next_active_job_id",
    "record_chunk",
]

_JOB = (
    "j.id, j.requested_by, j.reason, j.tenant, j.filter, j.rate_per_second, j.status, j.total, j.replayed,"
    " j.skipped, j.cursor, j.created_at, j.started_at, j.finished_at, j.cancelled_by,"
    " (SELECT count(*) FROM replays r WHERE r.job_id = j.id AND r.failed_at IS NOT NULL) AS failed"
)


async def create_job(
    conn: Any,
    *,
    job_id: str,
    requested_by: str,
    reason: str,
    tenant: str | None,
    selection: DeadLetterFilter,
    rate_per_second: float,
) -> int:
    """Create the job with every id ``selection`` matches now, oldest failure first; returns how many."""
    await conn.execute(
        "INSERT INTO replay_jobs (id, requested_by, reason, tenant, filter, rate_per_second, total)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6, 0)",
        job_id,
        requested_by,
        reason,
        tenant,
        json.dumps(filter_to_json(selection)),
        rate_per_second,
    )
    cond = condition_for(selection)
    at = len(cond.args) + 1
    total = await conn.fetchval(
        "WITH picked AS (INSERT INTO replay_job_items (job_id, seq, dead_letter_id)"
        f" SELECT ${at}, row_number() OVER (ORDER BY first_failed_at, original_offset, id), id"
        f" FROM dead_letters WHERE {cond.sql} RETURNING 1) SELECT count(*) FROM picked",
        *cond.args,
        job_id,
    )
    await conn.execute("UPDATE replay_jobs SET total = $2 WHERE id = $1", job_id, total)
    return int(total)


async def fetch_job(conn: Any, job_id: str, tenant: str | None) -> ReplayJob | None:
    row = await conn.fetchrow(
        f"SELECT {_JOB} FROM replay_jobs j WHERE j.id = $1 AND ($2::text IS NULL OR j.tenant = $2)",
        job_id,
        tenant,
    )
    return _job(row) if row is not None else None


async def fetch_jobs(
    conn: Any, tenant: str | None, status: str | None, before: str | None, limit: int
) -> list[ReplayJob]:
    """Newest first (ids are ULIDs, so by id)."""
    rows = await conn.fetch(
        f"SELECT {_JOB} FROM replay_jobs j WHERE ($1::text IS NULL OR j.tenant = $1)"
        " AND ($2::text IS NULL OR j.status = $2) AND ($3::text IS NULL OR j.id < $3)"
        " ORDER BY j.id DESC LIMIT $4",
        tenant,
        status,
        before,
        limit,
    )
    return [_job(row) for row in rows]


async def next_active_job_id(conn: Any) -> str | None:
    """The oldest job still to run that no other worker holds right now."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT id FROM replay_jobs WHERE status IN ('pending', 'running')"
        " ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
    )


async def lock_active_job(conn: Any, job_id: str) -> ReplayJob | None:
    """Lock the job for this transaction; None when it is done, cancelled, or held by another worker."""
    row = await conn.fetchrow(
        f"SELECT {_JOB} FROM replay_jobs j WHERE j.id = $1 AND j.status IN ('pending', 'running')"
        " FOR UPDATE OF j SKIP LOCKED",
        job_id,
    )
    return _job(row) if row is not None else None


async def items_after(conn: Any, job_id: str, cursor: int, limit: int) -> list[tuple[int, str]]:
    rows = await conn.fetch(
        "SELECT seq, dead_letter_id FROM replay_job_items WHERE job_id = $1 AND seq > $2"
        " ORDER BY seq LIMIT $3",
        job_id,
        cursor,
        limit,
    )
    return [(int(r["seq"]), str(r["dead_letter_id"])) for r in rows]


async def record_chunk(
    conn: Any,
    job_id: str,
    outcomes: Sequence[tuple[int, str, str | None]],
    *,
    replayed: int,
    skipped: int,
) -> None:
    """Each item's outcome (seq, outcome, replay id), and the job's counts and cursor past them."""
    await conn.executemany(
        "UPDATE replay_job_items SET outcome = $3, replay_id = $4 WHERE job_id = $1 AND seq = $2",
        [(job_id, seq, outcome, replay_id) for seq, outcome, replay_id in outcomes],
    )
    await conn.execute(
        "UPDATE replay_jobs SET cursor = $2, replayed = replayed + $3, skipped = skipped + $4,"
        " status = 'running', started_at = coalesce(started_at, now()), updated_at = now() WHERE id = $1",
        job_id,
        max(seq for seq, _, _ in outcomes),
        replayed,
        skipped,
    )


async def finish_job(conn: Any, job_id: str) -> None:
    await conn.execute(
        "UPDATE replay_jobs SET status = 'completed', started_at = coalesce(started_at, now()),"
        " finished_at = now(), updated_at = now() WHERE id = $1",
        job_id,
    )


async def cancel_job(conn: Any, job_id: str, tenant: str | None, cancelled_by: str) -> ReplayJob | None:
    """Stop a pending or running job after its current chunk; None when there is no such active job."""
    cancelled = await conn.fetchval(
        "UPDATE replay_jobs SET status = 'cancelled', cancelled_by = $3, finished_at = now(),"
        " updated_at = now()"
        " WHERE id = $1 AND ($2::text IS NULL OR tenant = $2) AND status IN ('pending', 'running')"
        " RETURNING id",
        job_id,
        tenant,
        cancelled_by,
    )
    return await fetch_job(conn, job_id, tenant) if cancelled is not None else None


def _job(row: Any) -> ReplayJob:
    return ReplayJob(
        id=row["id"],
        requested_by=row["requested_by"],
        reason=row["reason"],
        tenant=row["tenant"],
        filter=filter_from_json(json.loads(row["filter"])),
        rate_per_second=float(row["rate_per_second"]),
        status=JobStatus(row["status"]),
        total=int(row["total"]),
        replayed=int(row["replayed"]),
        skipped=int(row["skipped"]),
        failed=int(row["failed"]),
        cursor=int(row["cursor"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        cancelled_by=row["cancelled_by"],
    )
