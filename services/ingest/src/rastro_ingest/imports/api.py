"""``/v1/imports``: CSV files of events, streamed in, with per-row errors downloadable as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile

from rastro_ingest.adapters.repository import tenant_exists
from rastro_ingest.domain.csv_rows import CsvOptionsError, RowDefaults, parse_mapping
from rastro_ingest.domain.events_in import EVENT_KINDS
from rastro_ingest.imports.edi import EDI_FORMATS, EDI_ZONE, EdiImportRequest, EdiRejected, run_edi_import
from rastro_ingest.imports.importer import ImportFailed, ImportRequest, run_import
from rastro_ingest.imports.repository import fetch_job, iter_errors, job_view, list_jobs
from rastro_kit.auth import Principal
from rastro_kit.http import PROBLEM_BASE, PROBLEM_JSON, ProblemError, require_scope, tenant_scope

__all__ = ["router"]

router = APIRouter(tags=["imports"])
_OPTIONS = ("mapping", "encoding", "delimiter", "type", "timezone", "format", "carrier")
_FORMATS = ("csv", *EDI_FORMATS, "edi")
MAX_EDI_BYTES = 50 * 1024 * 1024
"""an EDI file is parsed whole (it is published all or nothing): larger ones are refused (413)"""
_UPLOAD_READ = 64 * 1024
_RAW_TYPES = frozenset(
    {
        "",
        "text/csv",
        "application/csv",
        "text/plain",
        "application/octet-stream",
        "application/vnd.ms-excel",
        "application/edi-x12",
    }
)
_EXAMPLE = (
    "Rastreio;Transportadora;Codigo;Descricao;DataHora;Cidade;UF\n"
    "AA123456785BR;correios;BDE-01;Objeto entregue;23/11/2026 14:05;São Paulo;SP\n"
)
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}, "example": _EXAMPLE},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        **{name: {"type": "string"} for name in _OPTIONS},
                    },
                }
            },
        },
    }
}


@router.post(
    "/v1/imports",
    status_code=202,
    summary="Import a file of events: CSV, or EDI occurrences (OCOREN 3.1/5.0, ANSI X12 214)",
    description=(
        "`format=csv` (the default): the body is the CSV itself (`Content-Type: text/csv`, best "
        "streamed with chunked transfer encoding for large files) or a multipart form with the file "
        "in `file` (options may then be form fields too). Each row becomes one event, exactly as in "
        "`POST /v1/events`. Columns are found by our field names (`tracking_number`, `status_code`, "
        '`occurred_at`, `location.city`…) or through `mapping`, e.g. `{"tracking_number": "Rastreio", '
        '"occurred_at": "DataHora"}`. Rows are committed 1,000 at a time; the answer (202) is the '
        "finished job with its counts. Bad rows do not stop the import: download them from "
        "`/v1/imports/{id}/errors`. Event ids derive from the tenant and the row's content, so "
        "uploading the same file again enqueues nothing (`rows_duplicate`).\n\n`format=ocoren`, "
        "`x12-214`, or `edi` (either, recognised from the content): an EDI occurrence file, parsed "
        "whole. A malformed file is refused (422, `invalid-edi`) with every error's line and column, "
        "and nothing is published. Each occurrence becomes a `tracking.raw` event with `status_code` "
        "`OCOREN-<code>` or `X12-<AT701>` and `carrier` = the file's sender (or `carrier=`); it is "
        "matched to its shipment by tracking number, else by the invoice an `invoice.issued` event "
        "named (NF-e access key or number). Unmatched occurrences are the job's errors, the rest are "
        "published in one transaction. An X12 214 gets its 997 at `/v1/imports/{id}/acknowledgement`."
    ),
    responses={
        413: {"description": "an EDI file over 50 MiB"},
        415: {"description": "the body is neither text/csv nor multipart/form-data"},
        422: {"description": "options or header unusable (no job), the file broke off, or malformed EDI"},
    },
    openapi_extra=_BODY_DOC,
)
async def post_import(
    request: Request,
    principal: Principal = require_scope("events:write"),
    tenant: str | None = Query(default=None, description="operator keys only: the tenant to import for"),
    mapping: str | None = Query(default=None, description="JSON object: our field → the file's header"),
    encoding: str = Query(default="utf-8", description="utf-8, latin-1 or windows-1252; a BOM means UTF-8"),
    delimiter: str | None = Query(default=None, description="`,` `;` `|` or `tab`; default: sniffed"),
    type_: str = Query(default="tracking.event", alias="type", description="for rows without `type`"),
    timezone: str | None = Query(default=None, description="IANA zone for times without an offset"),
    filename: str | None = Query(default=None, max_length=255),
    format_: str = Query(default="csv", alias="format", description="csv, ocoren, x12-214, or edi (either)"),
    carrier: str | None = Query(
        default=None,
        max_length=64,
        description="EDI: the sending carrier, when the file's sender name is not",
    ),
    traceparent: str | None = Header(default=None),
) -> Response:
    runtime = request.app.state.runtime
    tenant_id = _acting_tenant(principal, tenant)
    options: dict[str, str | None] = {
        "mapping": mapping,
        "encoding": encoding,
        "delimiter": delimiter,
        "type": type_,
        "timezone": timezone,
        "format": format_,
        "carrier": carrier,
    }
    async with runtime.pool.acquire() as conn:
        if not await tenant_exists(conn, tenant_id):
            raise ProblemError(404, f"Unknown tenant {tenant_id!r}.", type_="unknown-tenant")
    chunks, filename = await _body(request, options, filename)
    if options["format"] != "csv":
        return await _edi_import(runtime.pool, chunks, tenant_id, filename, options, traceparent)
    import_request = _import_request(tenant_id, filename, options, traceparent)
    try:
        job = await run_import(runtime.pool, chunks, import_request)
    except CsvOptionsError as exc:
        raise ProblemError(
            422, exc.message, type_="invalid-csv", errors=[{"field": exc.field, "message": exc.message}]
        ) from None
    except ImportFailed as exc:
        return _failed(exc.job)
    return JSONResponse(job_view(job), status_code=202, headers={"Location": f"/v1/imports/{job['id']}"})


@router.get("/v1/imports", summary="List import jobs, newest first")
async def get_imports(
    request: Request,
    principal: Principal = require_scope("events:write"),
    tenant: str | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, description="`next_cursor` of the previous page"),
) -> dict[str, Any]:
    async with request.app.state.runtime.pool.acquire() as conn:
        jobs = await list_jobs(conn, tenant_scope(principal, tenant), before=cursor, limit=limit)
    next_cursor = jobs[-1]["id"] if len(jobs) == limit else None
    return {"items": [job_view(j) for j in jobs], "next_cursor": next_cursor}


@router.get("/v1/imports/{job_id}", summary="One import job: status, progress and counts")
async def get_import(
    request: Request,
    job_id: str,
    principal: Principal = require_scope("events:write"),
    tenant: str | None = Query(default=None),
) -> dict[str, Any]:
    return job_view(await _job_or_404(request, job_id, principal, tenant))


@router.get(
    "/v1/imports/{job_id}/errors",
    summary="The job's per-row errors as CSV (row,field,message)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_import_errors(
    request: Request,
    job_id: str,
    principal: Principal = require_scope("events:write"),
    tenant: str | None = Query(default=None),
) -> StreamingResponse:
    job = await _job_or_404(request, job_id, principal, tenant)
    return StreamingResponse(
        _errors_csv(request.app.state.runtime.pool, job["id"]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{job["id"]}-errors.csv"'},
    )


@router.get(
    "/v1/imports/{job_id}/acknowledgement",
    summary="The X12 997 functional acknowledgement of an X12 214 import",
    response_class=Response,
    responses={
        200: {"content": {"application/edi-x12": {}}},
        404: {"description": "no such job, or not X12"},
    },
)
async def get_import_acknowledgement(
    request: Request,
    job_id: str,
    principal: Principal = require_scope("events:write"),
    tenant: str | None = Query(default=None),
) -> Response:
    job = await _job_or_404(request, job_id, principal, tenant)
    acknowledgement = job["options"].get("acknowledgement")
    if not acknowledgement:
        raise ProblemError(404, f"Import {job_id!r} is not an X12 file: it has no 997.", type_="not-found")
    return Response(
        acknowledgement,
        media_type="application/edi-x12",
        headers={"Content-Disposition": f'attachment; filename="{job_id}-997.edi"'},
    )


async def _edi_import(
    pool: Any,
    chunks: AsyncIterator[bytes],
    tenant_id: str,
    filename: str | None,
    options: dict[str, str | None],
    traceparent: str | None,
) -> Response:
    format_ = options["format"]
    if format_ not in _FORMATS:
        _invalid("format", f"unknown format {format_!r}; expected one of {list(_FORMATS)}")
    zone = _zone(options["timezone"])
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > MAX_EDI_BYTES:
            raise ProblemError(
                413, f"An EDI file may be at most {MAX_EDI_BYTES // 2**20} MiB.", type_="payload-too-large"
            )
    edi_request = EdiImportRequest(
        tenant_id=tenant_id,
        filename=filename,
        format=None if format_ == "edi" else format_,
        carrier=options["carrier"],
        timezone=zone or EDI_ZONE,
        encoding=options["encoding"] if options["encoding"] not in (None, "utf-8") else None,
        traceparent=traceparent,
    )
    try:
        job = await run_edi_import(pool, bytes(data), edi_request)
    except EdiRejected as exc:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + "invalid-edi",
            "title": "The EDI file is malformed: nothing was imported",
            "status": 422,
            "detail": exc.message,
            "errors": exc.errors[:1000],
        }
        if exc.job is not None:
            body["job"] = job_view(exc.job)
        return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON)
    return JSONResponse(job_view(job), status_code=202, headers={"Location": f"/v1/imports/{job['id']}"})


def _failed(job: dict[str, Any]) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + "import-failed",
        "title": "The import stopped part-way",
        "status": 422,
        "detail": job["error"],
        "job": job_view(job),
    }
    return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON)


def _acting_tenant(principal: Principal, requested: str | None) -> str:
    if principal.tenant_id is not None:  # a 3PL key may also name a tenant it acts for (docs/roles.md)
        if requested is not None and not principal.acts_for(requested):
            raise ProblemError(403, "This key cannot import for another tenant.", type_="forbidden")
        return requested or principal.tenant_id
    if not requested:
        raise ProblemError(422, "Operator keys must name the tenant: ?tenant=<id>.", type_="tenant-required")
    return requested


async def _body(
    request: Request, options: dict[str, str | None], filename: str | None
) -> tuple[AsyncIterator[bytes], str | None]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _RAW_TYPES:
        return request.stream(), filename
    if content_type != "multipart/form-data":
        raise ProblemError(
            415, "Send the CSV as text/csv, or as multipart/form-data in a `file` field.", type_="media-type"
        )
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ProblemError(
            422,
            "The multipart form needs the CSV in a `file` field.",
            type_="validation-error",
            errors=[{"field": "file", "message": "required"}],
        )
    for name in _OPTIONS:
        value = form.get(name)
        if isinstance(value, str) and value:
            options[name] = value
    return _read_upload(upload), filename or upload.filename


async def _read_upload(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_UPLOAD_READ):
        yield chunk


def _import_request(
    tenant_id: str, filename: str | None, options: dict[str, str | None], traceparent: str | None
) -> ImportRequest:
    event_type = options["type"] or "tracking.event"
    if event_type not in EVENT_KINDS:
        _invalid("type", f"unknown event type {event_type!r}; expected one of {sorted(EVENT_KINDS)}")
    zone = _zone(options["timezone"])
    delimiter = options["delimiter"]
    try:
        mapping = parse_mapping(options["mapping"])
    except CsvOptionsError as exc:
        _invalid(exc.field, exc.message)
    return ImportRequest(
        tenant_id=tenant_id,
        filename=filename,
        encoding=options["encoding"] or "utf-8",
        delimiter="\t" if delimiter in ("tab", "\\t") else delimiter or None,
        mapping=mapping,
        defaults=RowDefaults(event_type=event_type, timezone=zone),
        timezone_name=options["timezone"],
        traceparent=traceparent,
    )


def _zone(name: str | None) -> ZoneInfo | None:
    """The ``timezone`` option (None when not given); an unknown zone is a 422."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return _invalid("timezone", f"unknown time zone {name!r}; e.g. America/Sao_Paulo")  # type: ignore[no-any-return]


def _invalid(field: str, message: str) -> Any:
    raise ProblemError(422, message, type_="validation-error", errors=[{"field": field, "message": message}])


async def _job_or_404(
    request: Request, job_id: str, principal: Principal, tenant: str | None
) -> dict[str, Any]:
    async with request.app.state.runtime.pool.acquire() as conn:
        job = await fetch_job(conn, job_id, tenant_scope(principal, tenant))
    if job is None:
        raise ProblemError(404, f"No import {job_id!r}.", type_="not-found")
    return job


async def _errors_csv(pool: Any, job_id: str) -> AsyncIterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row", "field", "message"])
    count = 0
    async for error in iter_errors(pool, job_id):
        writer.writerow(error)
        count += 1
        if count % 1000 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
