"""What every dead-letter route shares: the scope it needs, the pool, and the filter of its query."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from rastro_dlq_replay.domain.dead_letter import Status
from rastro_dlq_replay.domain.query import DeadLetterFilter
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, require_scope, tenant_scope

__all__ = ["LISTED", "SCOPE", "Manager", "Pool", "Reader", "Selection", "aware", "no_nul"]

SCOPE = "dead-letters:manage"
Manager = Annotated[Principal, require_scope(SCOPE)]
Reader = Annotated[Principal, require_scope("dead-letters:read")]  # manage implies read (docs/roles.md)
LISTED = (Status.NEW, Status.REPLAYED, Status.FAILED_AFTER_REPLAY)


def _pool(request: Request) -> Any:
    return request.app.state.runtime.pool


Pool = Annotated[Any, Depends(_pool)]


def no_nul(*texts: str | None) -> None:
    if any("\x00" in (text or "") for text in texts):
        raise ProblemError(422, "Text must not contain NUL characters.", type_="validation-error")


def _selection(
    principal: Reader,
    service: Annotated[str | None, Query(description="the service that failed them")] = None,
    reason: Annotated[str | None, Query(description="e.g. schema_violation")] = None,
    tenant: Annotated[str | None, Query(description="operators only; a tenant key sees its own")] = None,
    event_type: Annotated[str | None, Query(description="e.g. rastro.tracking.raw.v1")] = None,
    since: Annotated[datetime | None, Query(description="last failure at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="last failure before (ISO 8601)")] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="free text: error, subject, key, event")
    ] = None,
    status: Annotated[
        list[Status] | None, Query(description="repeatable; default: every status but purged")
    ] = None,
) -> DeadLetterFilter:
    no_nul(service, reason, tenant, event_type, q)
    return DeadLetterFilter(
        service=service or None,
        reason=reason or None,
        tenant=tenant_scope(principal, tenant or None),
        event_type=event_type or None,
        since=aware(since),
        until=aware(until),
        text=q or None,
        statuses=tuple(status) if status else LISTED,
    )


Selection = Annotated[DeadLetterFilter, Depends(_selection)]


def aware(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC (naive is UTC). A time with no UTC equivalent (year 1 at +10:05) is a 422 here:
    the export streams, so the database's refusal would come after its 200."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ProblemError(422, "A time is out of range.", type_="validation-error") from None
