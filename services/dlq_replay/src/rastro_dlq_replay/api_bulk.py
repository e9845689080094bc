"""``/v1/dead-letters`` by filter: the audit trail, export as JSON lines, and purge by filter.

These fixed paths are routed before ``/v1/dead-letters/{id}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from rastro_dlq_replay.adapters import audit, repository
from rastro_dlq_replay.api_deps import LISTED, Manager, Pool, Reader, Selection
from rastro_dlq_replay.api_job_models import AuditEntryOut, AuditPage, PreviewGroup, PurgeBody, PurgeResult
from rastro_dlq_replay.api_models import DeadLetterOut
from rastro_dlq_replay.domain.jobs import AuditAction, filter_to_json
from rastro_dlq_replay.domain.query import Cursor, DeadLetterFilter
from rastro_kit.http import ProblemError, tenant_scope

__all__ = ["router"]

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])
NDJSON = "application/x-ndjson"
_EXPORT_PAGE = 500
# Valid raw in JSON strings, but line breaks to str.splitlines (and so to many line readers): escaped, a
# line is always one dead letter. Outside strings JSON has none of them, so escaping is always safe.
_LINE_BREAKS = str.maketrans({c: f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"})


@router.get("/audit", summary="The audit trail: who replayed or purged what, when and why; newest first")
async def audit_trail(
    pool: Pool,
    principal: Reader,
    action: Annotated[AuditAction | None, Query(description="only this action")] = None,
    job_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[int | None, Query(ge=1, description="next_cursor of the previous page")] = None,
) -> AuditPage:
    async with pool.acquire() as conn:
        found = await audit.fetch_audit(
            conn,
            tenant_scope(principal, None),
            action=str(action) if action else None,
            job_id=job_id,
            before=cursor,
            limit=limit + 1,
        )
    items = found[:limit]
    next_cursor = str(items[-1].id) if len(found) > limit else None
    return AuditPage(items=[AuditEntryOut.of(e) for e in items], next_cursor=next_cursor)


@router.get(
    "/export",
    summary="Every dead letter the filters select, one JSON object per line (as the list shows them)",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {}}}},
)
async def export(pool: Pool, selection: Selection) -> StreamingResponse:
    return StreamingResponse(_lines(pool, selection), media_type=NDJSON)


async def _lines(pool: Any, selection: DeadLetterFilter) -> AsyncIterator[bytes]:
    after: Cursor | None = None
    while True:
        async with pool.acquire() as conn:
            page = await repository.fetch_page(conn, selection, after, _EXPORT_PAGE)
        for letter in page:
            line = DeadLetterOut.of(letter).model_dump_json().translate(_LINE_BREAKS)
            yield line.encode() + b"\n"
        if len(page) < _EXPORT_PAGE:
            return
        after = Cursor(page[-1].last_failed_at, page[-1].id)


@router.post(
    "/purge",
    summary="Purge every dead letter a filter selects (payloads erased, metadata kept)",
    responses={409: {"description": "not `expected_count` dead letters match now: nothing purged"}},
)
async def purge_by_filter(pool: Pool, principal: Manager, body: PurgeBody) -> PurgeResult:
    if not body.filter.narrows():
        raise ProblemError(422, "A purge by filter needs at least one filter field.", type_="filter-required")
    selection = body.filter.to_filter(principal, LISTED)
    async with pool.acquire() as conn, conn.transaction():
        groups = await repository.count_by_service_and_reason(conn, selection)
        matching = sum(n for _, _, n in groups)
        shown = [PreviewGroup(service=s, reason=r, count=n) for s, r, n in groups]
        if body.expected_count is not None and body.expected_count != matching:
            raise ProblemError(
                409,
                f"{matching} dead letters match now, not the {body.expected_count} confirmed:"
                " nothing purged.",
                type_="count-changed",
                matching=matching,
            )
        if body.dry_run:
            return PurgeResult(dry_run=True, purged=matching, groups=shown)
        ids = await repository.purge_matching(conn, selection, principal.key_id)
        await audit.append_audit(
            conn,
            actor=principal.key_id,
            action=AuditAction.PURGE,
            reason=body.reason,
            tenant=tenant_scope(principal, None),
            filter_=filter_to_json(selection),
            counts={"purged": len(ids)},
            dead_letter_ids=ids,
        )
    return PurgeResult(dry_run=False, purged=len(ids), groups=shown)
