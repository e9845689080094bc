"""``/v1/dead-letters``: list, count, show, replay and purge dead letters (DESIGN §8, §11).

Every route needs the ``dead-letters:manage`` scope. A tenant key sees its own tenant's dead letters
only (another tenant's are 404); the operator key sees all, including those without a tenant.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from rastro_dlq_replay.adapters import audit, repository
from rastro_dlq_replay.api_deps import Manager, Pool, Reader, Selection
from rastro_dlq_replay.api_job_models import PreviewGroup, ReplayJobOut, ReplayPreview
from rastro_dlq_replay.api_jobs import load_job
from rastro_dlq_replay.api_models import (
    ID_PATTERN,
    DeadLetterOut,
    DeadLetterPage,
    ReplayBody,
    ReplayResult,
    Stats,
    StatsGroup,
)
from rastro_dlq_replay.domain.jobs import REPLAYABLE, AuditAction, filter_to_json
from rastro_dlq_replay.domain.query import Cursor, GroupBy, InvalidCursor, decode_cursor, encode_cursor
from rastro_dlq_replay.replay_jobs import JobRequest, create_replay_job, preview_replay
from rastro_dlq_replay.replays import ReplayRequest, replay_dead_letters
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, tenant_scope

__all__ = ["router"]

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])


def _dead_letter_id(dead_letter_id: str) -> str:
    if not ID_PATTERN.fullmatch(dead_letter_id):  # not one of ours: no need to ask the database
        raise ProblemError(404, "No such dead letter.", type_="not-found")
    return dead_letter_id


DeadLetterId = Annotated[str, Depends(_dead_letter_id)]


@router.get("", summary="List dead letters, newest failure first")
async def list_dead_letters(
    pool: Pool,
    selection: Selection,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> DeadLetterPage:
    after = _cursor(cursor)
    async with pool.acquire() as conn:
        page = await repository.fetch_page(conn, selection, after, limit + 1)
    items, more = page[:limit], len(page) > limit
    next_cursor = encode_cursor(Cursor(items[-1].last_failed_at, items[-1].id)) if more else None
    return DeadLetterPage(items=[DeadLetterOut.of(letter) for letter in items], next_cursor=next_cursor)


@router.get("/stats", summary="Count dead letters, grouped")
async def dead_letter_stats(
    pool: Pool,
    selection: Selection,
    group_by: GroupBy = GroupBy.REASON,
    top: Annotated[int | None, Query(ge=1, le=1000, description="only the largest groups")] = None,
) -> Stats:
    async with pool.acquire() as conn:
        groups = await repository.count_groups(conn, selection, group_by)
    shown = groups[:top] if top is not None else groups
    return Stats(total=sum(n for _, n in groups), groups=[StatsGroup(key=k, count=n) for k, n in shown])


@router.get("/{dead_letter_id}", summary="Show one dead letter, with its replays")
async def show_dead_letter(pool: Pool, principal: Reader, dead_letter_id: DeadLetterId) -> DeadLetterOut:
    tenant = tenant_scope(principal, None)
    async with pool.acquire() as conn:
        letter = await repository.fetch_dead_letter(conn, dead_letter_id, tenant)
        if letter is None:
            raise ProblemError(404, "No such dead letter.", type_="not-found")
        replays = await repository.fetch_replays(conn, dead_letter_id)
    return DeadLetterOut.of(letter, replays)


@router.post(
    "/replay",
    summary="Send dead letters back to the service that failed them: ids at once, or a filter as a job",
    responses={202: {"model": ReplayJobOut, "description": "a replay job was created (by filter)"}},
)
async def replay(
    request: Request, response: Response, pool: Pool, principal: Manager, body: ReplayBody
) -> ReplayResult | ReplayPreview | ReplayJobOut:
    settings = request.app.state.runtime.settings
    if body.filter is not None:
        return await _replay_by_filter(request, response, pool, principal, body)
    assert body.ids is not None
    if len(body.ids) > settings.max_replay_ids:
        raise ProblemError(422, f"At most {settings.max_replay_ids} ids per request.", type_="too-many-ids")
    outcome = await replay_dead_letters(
        pool,
        ReplayRequest(
            ids=tuple(body.ids),
            reason=body.reason,
            requested_by=principal.key_id,
            tenant=tenant_scope(principal, None),
            dry_run=body.dry_run,
        ),
    )
    return ReplayResult.of(outcome)


async def _replay_by_filter(
    request: Request, response: Response, pool: Pool, principal: Principal, body: ReplayBody
) -> ReplayPreview | ReplayJobOut:
    settings = request.app.state.runtime.settings
    assert body.filter is not None
    selection = body.filter.to_filter(principal, REPLAYABLE)
    if body.dry_run:
        preview = await preview_replay(pool, selection)
        groups = [PreviewGroup(service=s, reason=r, count=n) for s, r, n in preview.groups]
        return ReplayPreview(
            total=preview.total,
            replayable=preview.replayable,
            groups=groups,
            filter=filter_to_json(selection),
        )
    rate = body.rate_per_second or settings.default_replay_rate
    if rate > settings.max_replay_rate:
        raise ProblemError(
            422, f"rate_per_second is at most {settings.max_replay_rate}.", type_="validation-error"
        )
    job_id = await create_replay_job(
        pool,
        JobRequest(
            selection=selection,
            reason=body.reason,
            requested_by=principal.key_id,
            tenant=tenant_scope(principal, None),
            rate_per_second=rate,
        ),
    )
    request.app.state.runtime.state["replay_worker"].wake()
    response.status_code = 202
    response.headers["Location"] = f"/v1/replay-jobs/{job_id}"
    return await load_job(pool, job_id, None)


@router.delete("/{dead_letter_id}", status_code=204, summary="Purge a dead letter (its payload is erased)")
async def purge(
    pool: Pool,
    principal: Manager,
    dead_letter_id: DeadLetterId,
    reason: Annotated[str | None, Query(max_length=1000, description="why: kept in the audit trail")] = None,
) -> Response:
    tenant = tenant_scope(principal, None)
    async with pool.acquire() as conn, conn.transaction():
        purged = await repository.purge_dead_letter(conn, dead_letter_id, tenant, principal.key_id)
        if purged:
            await audit.append_audit(
                conn,
                actor=principal.key_id,
                action=AuditAction.PURGE,
                reason=(reason or "").strip() or None,
                tenant=tenant,
                counts={"purged": 1},
                dead_letter_ids=[dead_letter_id],
            )
    if not purged:
        raise ProblemError(404, "No such dead letter.", type_="not-found")
    return Response(status_code=204)


def _cursor(token: str | None) -> Cursor | None:
    if not token:
        return None
    try:
        return decode_cursor(token)
    except InvalidCursor as exc:
        raise ProblemError(400, str(exc), type_="invalid-cursor") from None
