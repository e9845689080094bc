"""``GET /v1/audit/<service>``: a service's own audit entries, for admins (scope ``audit:read``).

Every service serves its own table under its own path, so the dev gateway routes each by prefix and
``rastro audit list`` merges them (docs/audit.md says why there is no central copy).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from rastro_kit import audit
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, require_scope, tenant_scope

__all__ = ["audit_router", "decode_cursor", "encode_cursor"]

Reader = Annotated[Principal, require_scope("audit:read")]


def encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(str(entry_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except ValueError:
        raise ProblemError(400, "The cursor is not one this API gave out.", type_="bad-cursor") from None


def audit_router(service: str) -> APIRouter:
    router = APIRouter(tags=["audit"])

    @router.get(
        f"/v1/audit/{service}",
        summary=f"The audit log of {service}: who changed what, when and from where; newest first",
    )
    async def list_audit(
        request: Request,
        principal: Reader,
        action: Annotated[str | None, Query(max_length=100, description="exact, or a prefix: key.*")] = None,
        since: Annotated[datetime | None, Query(description="entries at or after this time")] = None,
        actor: Annotated[str | None, Query(max_length=100, description="an API key id")] = None,
        tenant: Annotated[str | None, Query(max_length=63, description="operator and 3PL keys")] = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        if since is not None and since.tzinfo is None:
            raise ProblemError(422, "since needs a UTC offset.", type_="validation-error")
        async with request.app.state.runtime.pool.acquire() as conn:
            found = await audit.fetch(
                conn,
                tenant_scope(principal, tenant),
                action=action,
                since=since,
                actor=actor,
                before=decode_cursor(cursor),
                limit=limit + 1,
            )
        items = found[:limit]
        more = len(found) > limit
        return {
            "items": [{**e.public(), "service": service} for e in items],
            "next_cursor": encode_cursor(items[-1].id) if more else None,
        }

    return router
