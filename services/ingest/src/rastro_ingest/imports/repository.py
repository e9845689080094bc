"""Import jobs in Postgres: the job row, its per-row errors, and the keys of events already enqueued."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from rastro_events import Envelope
from rastro_ingest.references import order_payloads, remember_refs
from rastro_kit.outbox import enqueue_events

__all__ = [
    "MAX_ERRORS_STORED",
    "Chunk",
    "create_job",
    "fetch_job",
    "finish_job",
    "iter_errors",
    "job_view",
    "list_jobs",
    "write_chunk",
]

MAX_ERRORS_STORED = 100_000
"""error lines kept per job; ``rows_rejected`` still counts every bad row"""
_JOB_COLUMNS = (
    "id, tenant_id, status, filename, options, rows_total, rows_read, rows_accepted, rows_rejected,"
    " rows_duplicate, errors_stored, bytes_received, file_sha256, error, created_at, updated_at, finished_at"
)


@dataclass
class Chunk:
    """One batch of rows, written in one transaction together with the job's progress."""

    events: list[tuple[uuid.UUID, str, Envelope]]
    """(identity, topic, envelope) of each valid row"""
    errors: list[tuple[int, str, str]]
    """(row, field, message)"""
    rows: int
    rejected: int
    bytes_received: int


async def create_job(conn: Any, job_id: str, tenant_id: str, filename: str | None, options: Any) -> None:
    await conn.execute(
        "INSERT INTO import_jobs(id, tenant_id, status, filename, options)"
        " VALUES ($1, $2, 'processing', $3, $4)",
        job_id,
        tenant_id,
        filename,
        json.dumps(options),
    )


async def write_chunk(conn: Any, job_id: str, tenant_id: str, chunk: Chunk) -> None:
    """Enqueue the rows' events not enqueued before (by identity), store errors, advance the job."""
    async with conn.transaction():
        new = await _claim_new(conn, tenant_id, chunk.events)
        if new:
            await enqueue_events(conn, new)
            await remember_refs(conn, tenant_id, order_payloads(envelope for _, envelope in new))
        room = MAX_ERRORS_STORED - await conn.fetchval(
            "SELECT errors_stored FROM import_jobs WHERE id = $1", job_id
        )
        kept = chunk.errors[: max(room, 0)]
        if kept:
            await conn.copy_records_to_table(
                "import_errors",
                records=[(job_id, *e) for e in kept],
                columns=["job_id", "row_number", "field", "message"],
            )
        await conn.execute(
            "UPDATE import_jobs SET rows_read = rows_read + $2, rows_accepted = rows_accepted + $3,"
            " rows_rejected = rows_rejected + $4, rows_duplicate = rows_duplicate + $5,"
            " errors_stored = errors_stored + $6, bytes_received = $7, updated_at = now() WHERE id = $1",
            job_id,
            chunk.rows,
            len(chunk.events),
            chunk.rejected,
            len(chunk.events) - len(new),
            len(kept),
            chunk.bytes_received,
        )


async def _claim_new(
    conn: Any, tenant_id: str, events: list[tuple[uuid.UUID, str, Envelope]]
) -> list[tuple[str, Envelope]]:
    """The events whose identity no import of this tenant has enqueued yet, each once."""
    fresh = {
        r["event_key"]
        for r in await conn.fetch(
            "INSERT INTO import_event_keys(tenant_id, event_key) SELECT $1, k FROM unnest($2::uuid[]) k"
            " ON CONFLICT DO NOTHING RETURNING event_key",
            tenant_id,
            [key for key, _, _ in events],
        )
    }
    new: list[tuple[str, Envelope]] = []
    for key, topic, envelope in events:
        if key in fresh:
            fresh.discard(key)  # an identical row later in this chunk is the same event
            new.append((topic, envelope))
    return new


async def finish_job(
    conn: Any, job_id: str, *, status: str, bytes_received: int, sha256: str | None, error: str | None = None
) -> None:
    await conn.execute(
        "UPDATE import_jobs SET status = $2, bytes_received = $3, file_sha256 = $4, error = $5,"
        " rows_total = CASE WHEN $2 = 'completed' THEN rows_read END, updated_at = now(),"
        " finished_at = now() WHERE id = $1",
        job_id,
        status,
        bytes_received,
        sha256,
        error,
    )


async def fetch_job(conn: Any, job_id: str, tenant_id: str | None) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_JOB_COLUMNS} FROM import_jobs WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)",
        job_id,
        tenant_id,
    )
    return _job(row) if row else None


async def list_jobs(
    conn: Any, tenant_id: str | None, *, before: str | None, limit: int
) -> Sequence[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_JOB_COLUMNS} FROM import_jobs WHERE ($1::text IS NULL OR tenant_id = $1)"
        " AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        tenant_id,
        before,
        limit,
    )
    return [_job(r) for r in rows]


async def iter_errors(pool: Any, job_id: str, page: int = 5000) -> AsyncIterator[tuple[int, str, str]]:
    """Every stored error of a job, in row order, a page at a time (keyset, so memory stays flat)."""
    after: tuple[int, str, str] = (-1, "", "")
    while True:
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT row_number, field, message FROM import_errors WHERE job_id = $1"
                " AND (row_number, field, message) > ($2, $3, $4)"
                " ORDER BY row_number, field, message LIMIT $5",
                job_id,
                *after,
                page,
            )
        for r in rows:
            yield r["row_number"], r["field"], r["message"]
        if len(rows) < page:
            return
        after = (rows[-1]["row_number"], rows[-1]["field"], rows[-1]["message"])


def _job(row: Any) -> dict[str, Any]:
    job = dict(row)
    job["options"] = json.loads(job["options"])
    for name in ("created_at", "updated_at", "finished_at"):
        job[name] = job[name].isoformat() if job[name] else None
    return job


def job_view(job: dict[str, Any]) -> dict[str, Any]:
    """The job as the API shows it: counts, what was enqueued, links."""
    view = {k: v for k, v in job.items() if k != "errors_stored"}
    view["options"] = {k: v for k, v in job["options"].items() if k != "acknowledgement"}
    view["events_enqueued"] = job["rows_accepted"] - job["rows_duplicate"]
    view["errors_truncated"] = job["errors_stored"] >= MAX_ERRORS_STORED
    view["links"] = {"self": f"/v1/imports/{job['id']}", "errors": f"/v1/imports/{job['id']}/errors"}
    if "acknowledgement" in job["options"]:
        view["links"]["acknowledgement"] = f"/v1/imports/{job['id']}/acknowledgement"
    return view
