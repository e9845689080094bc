"""``/v1/dead-letters``: list, count, show, replay and purge dead letters (DESIGN §8, §11).

Every route needs the ``dead-letters:manage`` scope. A tenant key sees its own tenant's dead letters
only (another tenant's are 404); the operator key sees all, including those without a tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from rastro_dlq_replay.adapters import repository
from rastro_dlq_replay.api_models import (
    ID_PATTERN,
    DeadLetterOut,
    DeadLetterPage,
    ReplayBody,
    ReplayResult,
    Stats,
    StatsGroup,
)
from rastro_dlq_replay.domain.query import (
    Cursor,
    DeadLetterFilter,
    GroupBy,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
)
from rastro_dlq_replay.replays import ReplayRequest, replay_dead_letters
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, require_scope, tenant_scope

__all__ = ["router"]

SCOPE = "dead-letters:manage"
Manager = Annotated[Principal, require_scope(SCOPE)]
router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])


def _pool(request: Request) -> Any:
    return request.app.state.runtime.pool


Pool = Annotated[Any, Depends(_pool)]


def _selection(
    principal: Manager,
    service: Annotated[str | None, Query(description="the service that failed them")] = None,
    reason: Annotated[str | None, Query(description="e.g. schema_violation")] = None,
    tenant: Annotated[str | None, Query(description="operators only; a tenant key sees its own")] = None,
    since: Annotated[datetime | None, Query(description="last failure at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="last failure before (ISO 8601)")] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="free text: error, subject, key, event")
    ] = None,
) -> DeadLetterFilter:
    if any("\x00" in (text or "") for text in (service, reason, tenant, q)):
        raise ProblemError(422, "Query parameters must not contain NUL characters.", type_="validation-error")
    return DeadLetterFilter(
        service=service or None,
        reason=reason or None,
        tenant=tenant_scope(principal, tenant or None),
        since=_aware(since),
        until=_aware(until),
        text=q or None,
    )


Selection = Annotated[DeadLetterFilter, Depends(_selection)]


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
async def dead_letter_stats(pool: Pool, selection: Selection, group_by: GroupBy = GroupBy.REASON) -> Stats:
    async with pool.acquire() as conn:
        groups = await repository.count_groups(conn, selection, group_by)
    return Stats(total=sum(n for _, n in groups), groups=[StatsGroup(key=k, count=n) for k, n in groups])


@router.get("/{dead_letter_id}", summary="Show one dead letter, with its replays")
async def show_dead_letter(pool: Pool, principal: Manager, dead_letter_id: DeadLetterId) -> DeadLetterOut:
    tenant = tenant_scope(principal, None)
    async with pool.acquire() as conn:
        letter = await repository.fetch_dead_letter(conn, dead_letter_id, tenant)
        if letter is None:
            raise ProblemError(404, "No such dead letter.", type_="not-found")
        replays = await repository.fetch_replays(conn, dead_letter_id)
    return DeadLetterOut.of(letter, replays)


@router.post("/replay", summary="Send dead letters back to the service that failed them")
async def replay(request: Request, pool: Pool, principal: Manager, body: ReplayBody) -> ReplayResult:
    limit = request.app.state.runtime.settings.max_replay_ids
    if len(body.ids) > limit:
        raise ProblemError(422, f"At most {limit} ids per request.", type_="too-many-ids")
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


@router.delete("/{dead_letter_id}", status_code=204, summary="Purge a dead letter (its payload is erased)")
async def purge(pool: Pool, principal: Manager, dead_letter_id: DeadLetterId) -> Response:
    async with pool.acquire() as conn:
        purged = await repository.purge_dead_letter(
            conn, dead_letter_id, tenant_scope(principal, None), principal.key_id
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


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
