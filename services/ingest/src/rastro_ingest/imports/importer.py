"""One CSV import: read the header, open a job, then validate and enqueue the rows a chunk at a time.

Each chunk (``CHUNK_ROWS`` rows) is one transaction: its new events go to the outbox, its errors to
the job, and the job's counters move, so ``GET /v1/imports/{id}`` shows progress as it happens and an
interrupted upload keeps what it had committed (re-uploading the file then adds only the rest).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect

from rastro_events import new_event, new_event_id
from rastro_ingest.domain.csv_rows import (
    Columns,
    CsvOptionsError,
    RowDefaults,
    RowProblem,
    event_key,
    resolve_columns,
    row_to_event,
)
from rastro_ingest.domain.events_in import Rejected, read_event
from rastro_ingest.imports.reader import CsvStream, RecordTooLong, Row, RowError
from rastro_ingest.imports.repository import Chunk, create_job, fetch_job, finish_job, write_chunk
from rastro_kit.logs import get_logger

__all__ = ["CHUNK_ROWS", "ImportFailed", "ImportRequest", "run_import"]

CHUNK_ROWS = 1000
log = get_logger(__name__)


@dataclass(frozen=True)
class ImportRequest:
    tenant_id: str
    filename: str | None
    encoding: str = "utf-8"
    delimiter: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    defaults: RowDefaults = field(default_factory=RowDefaults)
    timezone_name: str | None = None
    traceparent: str | None = None


class ImportFailed(Exception):
    """The file became unreadable part-way; the job is marked ``failed`` and kept what it committed."""

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(job.get("error"))
        self.job = job


async def run_import(pool: Any, chunks: AsyncIterator[bytes], request: ImportRequest) -> dict[str, Any]:
    """The finished job. Raises ``CsvOptionsError`` (no job created) or ``ImportFailed``."""
    stream = CsvStream(chunks, request.encoding, request.delimiter)
    try:
        header = await stream.header()
    except RecordTooLong as exc:
        raise CsvOptionsError("(header)", str(exc)) from None
    columns = resolve_columns(header, request.mapping)
    job_id = f"imp_{new_event_id().lower()}"
    async with pool.acquire() as conn:
        await create_job(
            conn, job_id, request.tenant_id, request.filename, _options(request, stream, columns, header)
        )
    log.info("import_started", job_id=job_id, tenant=request.tenant_id)
    error: str | None = None
    try:
        async for batch in stream.batches(CHUNK_ROWS):
            chunk = _chunk(batch, columns, request, job_id, stream.bytes_read)
            async with pool.acquire() as conn:
                await write_chunk(conn, job_id, request.tenant_id, chunk)
    except RecordTooLong as exc:
        error = str(exc)
    except ClientDisconnect:
        error = "the upload was interrupted; rows committed so far are kept (upload the file again)"
    async with pool.acquire() as conn:
        status = "failed" if error else "completed"
        sha = None if error else stream.sha256
        await finish_job(
            conn, job_id, status=status, bytes_received=stream.bytes_read, sha256=sha, error=error
        )
        job = await fetch_job(conn, job_id, request.tenant_id)
    assert job is not None
    log.info("import_finished", job_id=job_id, tenant=request.tenant_id, status=status, rows=job["rows_read"])
    if error:
        raise ImportFailed(job)
    return job


def _chunk(batch: list[Row], columns: Columns, request: ImportRequest, job_id: str, received: int) -> Chunk:
    chunk = Chunk(events=[], errors=[], rows=len(batch), rejected=0, bytes_received=received)
    tenant = request.tenant_id
    for row in batch:
        if isinstance(row.cells, RowError):
            chunk.errors.append((row.number, row.cells.field, row.cells.message))
            chunk.rejected += 1
            continue
        try:
            item = row_to_event(row.cells, columns, request.defaults)
        except RowProblem as problem:
            chunk.errors.append((row.number, problem.field, problem.message))
            chunk.rejected += 1
            continue
        result = read_event(row.number, item)
        if isinstance(result, Rejected):
            chunk.errors.extend((row.number, e["field"], e["message"]) for e in result.errors)
            chunk.rejected += 1
            continue
        payload = result.payload
        key = event_key(tenant, payload.ce_type(), payload.model_dump_json(), result.event_id)
        envelope = new_event(
            payload,
            tenant_id=tenant,
            source=f"/tenants/{tenant}/csv/{job_id}",
            event_id=str(key),  # the row's own event_id, scoped to the tenant, else its content
            traceparent=request.traceparent,
        )
        chunk.events.append((key, payload.topic, envelope))
    return chunk


def _options(
    request: ImportRequest, stream: CsvStream, columns: Columns, header: list[str]
) -> dict[str, Any]:
    return {
        "encoding": stream.encoding,
        "bom": stream.bom,
        "delimiter": stream.delimiter,
        "mapping": request.mapping,
        "type": request.defaults.event_type,
        "timezone": request.timezone_name,
        "columns": {f: header[i].strip() for f, i in sorted(columns.index.items())},
        "ignored_columns": list(columns.ignored),
    }
