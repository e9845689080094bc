"""One EDI occurrence file (OCOREN 3.1 / 5.0, ANSI X12 214): parse it whole, match each occurrence to a
shipment, and enqueue the raw tracking events in ONE transaction with the job's counts.

- A malformed file (``EdiDocument.errors``) publishes nothing: the job is ``failed`` and keeps every
  error with its line and column (``GET /v1/imports/{id}/errors``).
- An occurrence is matched by its tracking number when the file has one (X12 ``B10``), else by its
  invoice: the NF-e access key, or the invoice number, against what ``invoice.issued`` events said
  (``rastro_ingest.references``). An occurrence that matches no shipment, or several, is that line's
  error; the others are published. Importing the file again once the invoice is known adds only those.
- Each event is a ``tracking.raw`` with ``carrier`` = the ``carrier`` option, else the carrier the
  shipment's ``order.shipped`` named, else the file's sender, and ``status_code`` = ``OCOREN-<code>``
  or ``X12-<AT701>``; normalization maps those through the standard tables like any carrier's codes.
- Event ids derive from the tenant and the event's content, so a re-import enqueues nothing
  (``rows_duplicate``) and a file sent twice by two channels (API and inbox folder) is one set of events.
- For an X12 214 the job keeps the 997 functional acknowledgement (``GET /v1/imports/{id}/acknowledgement``),
  accepting or rejecting the transaction sets.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from rastro_events import RawTrackingEvent, new_event, new_event_id
from rastro_events.payloads import Location
from rastro_ingest.domain.csv_rows import event_key
from rastro_ingest.domain.edi import (
    EdiDocument,
    EdiFormatError,
    EdiOccurrence,
    acknowledgement_997,
    parse_edi,
)
from rastro_ingest.imports.repository import Chunk, create_job, fetch_job, finish_job, write_chunk
from rastro_ingest.references import InvoiceRef, ShipmentRef, find_by_invoice
from rastro_kit.logs import get_logger

__all__ = ["EDI_FORMATS", "EDI_ZONE", "EdiImportRequest", "EdiRejected", "run_edi_import", "status_code_for"]

EDI_FORMATS = ("ocoren", "x12-214")
_PREFIX = {"ocoren": "OCOREN", "x12": "X12"}
EDI_ZONE = ZoneInfo("America/Sao_Paulo")
"""where OCOREN times (and X12 local times of no known state) are read, unless ``timezone`` says"""
log = get_logger(__name__)


@dataclass(frozen=True)
class EdiImportRequest:
    tenant_id: str
    filename: str | None
    format: str | None = None
    """``ocoren``, ``x12-214``, or None to recognise it from the content"""
    carrier: str | None = None
    """who sent the file, when the file's own sender name is not the carrier's (an alias or id)"""
    timezone: ZoneInfo = EDI_ZONE
    encoding: str | None = None
    traceparent: str | None = None
    source: str = "api"
    """``api`` or ``inbox``: where the file came from (the events' CloudEvents source)"""


class EdiRejected(Exception):
    """The file is malformed, or not EDI at all: nothing was published. ``job`` is None when not EDI."""

    def __init__(self, message: str, errors: list[dict[str, Any]], job: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.job = job


def status_code_for(document_format: str, occurrence: EdiOccurrence) -> str:
    """``OCOREN-01``, ``X12-D1``: the code normalization's standard tables know."""
    return f"{_PREFIX[document_format.split('-')[0]]}-{occurrence.code}"


async def run_edi_import(pool: Any, data: bytes, request: EdiImportRequest) -> dict[str, Any]:
    """The finished job (202), or ``EdiRejected`` with the job marked failed and its errors kept."""
    try:  # CPU-bound (a large file takes seconds): off the event loop, which serves other requests
        document = await asyncio.to_thread(
            parse_edi, data, request.format, timezone=request.timezone, encoding=request.encoding
        )
    except EdiFormatError as exc:
        error = {"line": 1, "column": 1, "message": str(exc)}
        raise EdiRejected(str(exc), [error], None) from None
    sha256 = hashlib.sha256(data).hexdigest()
    job_id = f"imp_{new_event_id().lower()}"
    options: dict[str, Any] = {
        "format": document.format,
        "carrier": request.carrier,
        "sender": document.sender,
        "interchange_id": document.interchange_id,
        "timezone": request.timezone.key,
        "source": request.source,
    }
    if document.format.startswith("x12"):
        try:
            options["acknowledgement"] = acknowledgement_997(document)
        except ValueError:
            pass  # no readable functional group (a broken ISA/GS): a 997 cannot answer it
    async with pool.acquire() as conn:
        await create_job(conn, job_id, request.tenant_id, request.filename, options)
    log.info("edi_import_started", job_id=job_id, tenant=request.tenant_id, format=document.format)
    if document.errors:
        chunk = Chunk(
            events=[],
            errors=[(e.line, f"column {e.column}", e.message) for e in document.errors],
            rows=len(document.occurrences),
            rejected=len(document.occurrences),
            bytes_received=len(data),
        )
        async with pool.acquire() as conn:
            await write_chunk(conn, job_id, request.tenant_id, chunk)
            message = f"the file is malformed ({len(document.errors)} errors); nothing was imported"
            await finish_job(
                conn, job_id, status="failed", bytes_received=len(data), sha256=sha256, error=message
            )
            job = await fetch_job(conn, job_id, request.tenant_id)
        errors = [{"line": e.line, "column": e.column, "message": e.message} for e in document.errors]
        log.info("edi_import_rejected", job_id=job_id, tenant=request.tenant_id, errors=len(errors))
        raise EdiRejected(message, errors, job)
    async with pool.acquire() as conn:
        matches = await _match(conn, request.tenant_id, document)
        chunk = _chunk(document, matches, request, job_id, len(data))
        await write_chunk(conn, job_id, request.tenant_id, chunk)  # one transaction: all or nothing
        await finish_job(conn, job_id, status="completed", bytes_received=len(data), sha256=sha256)
        job = await fetch_job(conn, job_id, request.tenant_id)
    assert job is not None
    log.info(
        "edi_import_finished",
        job_id=job_id,
        tenant=request.tenant_id,
        occurrences=job["rows_read"],
        rejected=job["rows_rejected"],
    )
    return job


async def _match(conn: Any, tenant_id: str, document: EdiDocument) -> list[list[ShipmentRef]]:
    """Per occurrence, the shipments its invoice names (the tracking number needs no lookup)."""
    refs = [
        InvoiceRef(o.invoice_number, o.invoice_key) if not o.tracking_number else InvoiceRef()
        for o in document.occurrences
    ]
    return await find_by_invoice(conn, tenant_id, refs)


def _chunk(
    document: EdiDocument,
    matches: list[list[ShipmentRef]],
    request: EdiImportRequest,
    job_id: str,
    size: int,
) -> Chunk:
    tenant = request.tenant_id
    chunk = Chunk(events=[], errors=[], rows=len(document.occurrences), rejected=0, bytes_received=size)
    for occurrence, found in zip(document.occurrences, matches, strict=True):
        tracking, order_id, known_carrier = occurrence.tracking_number, None, None
        if not tracking:
            problem = _unmatched(occurrence, found)
            if problem:
                chunk.errors.append((occurrence.line, "invoice", problem))
                chunk.rejected += 1
                continue
            tracking, order_id, known_carrier = found[0].tracking_number, found[0].order_id, found[0].carrier
        if not tracking:  # _unmatched refuses an order without one
            continue
        # The carrier as the tenant names it (the option, else its order.shipped), else the file's sender.
        carrier = request.carrier or known_carrier or occurrence.carrier_name or document.sender
        try:
            payload = _event(document, occurrence, tracking, order_id, carrier)
        except ValidationError as exc:  # e.g. a tracking number longer than any carrier's
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or "occurrence"
            chunk.errors.append((occurrence.line, field, error["msg"]))
            chunk.rejected += 1
            continue
        key = event_key(tenant, payload.ce_type(), payload.model_dump_json(exclude={"raw"}))
        envelope = new_event(
            payload,
            tenant_id=tenant,
            source=f"/tenants/{tenant}/edi/{request.source}/{job_id}",
            event_id=str(key),
            traceparent=request.traceparent,
        )
        chunk.events.append((key, payload.topic, envelope))
    return chunk


def _event(
    document: EdiDocument, occurrence: EdiOccurrence, tracking: str, order_id: str | None, carrier: str | None
) -> RawTrackingEvent:
    return RawTrackingEvent(
        tracking_number=tracking,
        carrier=(carrier or "").strip()[:64] or None,
        status_code=status_code_for(document.format, occurrence),
        description=occurrence.description[:1000] if occurrence.description else None,
        occurred_at=occurrence.occurred_at,
        location=Location.model_validate(occurrence.location) if occurrence.location else None,
        order_id=order_id,
        raw={
            "format": document.format,
            "line": occurrence.line,
            "carrier_name": occurrence.carrier_name,
            "carrier_document": occurrence.carrier_document,
            **occurrence.raw,
        },
    )


def _unmatched(occurrence: EdiOccurrence, found: list[ShipmentRef]) -> str | None:
    """Why an occurrence without a tracking number cannot be published, or None when it can."""
    named = occurrence.invoice_key or (
        f"{occurrence.invoice_series}-{occurrence.invoice_number}"
        if occurrence.invoice_series
        else occurrence.invoice_number
    )
    if not named:
        return "the occurrence names neither a tracking number nor an invoice"
    if not found:
        return f"no order with invoice {named} (send its invoice.issued event, then import the file again)"
    tracked = {f.tracking_number for f in found}
    if len(found) > 1 and len(tracked) > 1:
        orders = ", ".join(sorted(f.order_id for f in found)[:5])
        return f"invoice {named} is ambiguous: orders {orders}"
    if None in tracked:
        return (
            f"the order of invoice {named} ({found[0].order_id}) has no tracking number yet (order.shipped)"
        )
    return None
