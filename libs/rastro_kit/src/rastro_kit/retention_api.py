"""``GET``/``PUT /v1/retention/<area>``: a tenant's retention in one service (docs/privacy.md "Retention
per tenant"), for admins (scope ``retention:manage``; an operator key names the tenant).

Every service serves the categories it applies under its own prefix, so the dev gateway routes each by
prefix and ``rastro retention show|set`` fans out. ``GET`` answers, per category, the days in force and
whether they are the service's default or the tenant's override; ``PUT`` sets days (1..3650) or, with
``null``, drops the override, audited (``retention.set``) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from rastro_kit.audit import record
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, require_scope, tenant_scope
from rastro_kit.retention import MAX_DAYS, MIN_DAYS, policies_of, set_policies

__all__ = ["RetentionUpdate", "retention_router"]

Manager = Annotated[Principal, require_scope("retention:manage")]
TENANT = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Days = Annotated[int, Field(ge=MIN_DAYS, le=MAX_DAYS)]


class RetentionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str | None = Field(default=None, pattern=TENANT, description="operator keys: the tenant")
    days: dict[str, Days | None] = Field(
        min_length=1,
        max_length=20,
        description="category -> days (1..3650); null drops the tenant's override (the default applies)",
        examples=[{"shipments": 180, "dead_letters": None}],
    )


def _tenant(principal: Principal, requested: str | None) -> str:
    tenant = tenant_scope(principal, requested)
    if tenant is None:
        raise ProblemError(422, "An operator key must name the tenant.", type_="tenant-required")
    return tenant


def retention_router(area: str, service: str, defaults: Mapping[str, float]) -> APIRouter:
    """The routes of one service: ``defaults`` maps each category it applies to its default days."""
    router = APIRouter(tags=["retention"])
    path = f"/v1/retention/{area}"

    async def answer(conn: Any, tenant: str) -> dict[str, Any]:
        policies = await policies_of(conn, tenant, defaults)
        return {"service": service, "tenant": tenant, "policies": [p.public() for p in policies]}

    @router.get(path, summary=f"The tenant's retention in {service}: days per category, default or override")
    async def show(
        request: Request,
        principal: Manager,
        tenant: Annotated[str | None, Query(pattern=TENANT, description="operator and 3PL keys")] = None,
    ) -> dict[str, Any]:
        async with request.app.state.runtime.pool.acquire() as conn:
            return await answer(conn, _tenant(principal, tenant))

    @router.put(path, summary=f"Set the tenant's retention in {service} (null: back to the default)")
    async def update(request: Request, body: RetentionUpdate, principal: Manager) -> dict[str, Any]:
        tenant = _tenant(principal, body.tenant)
        unknown = sorted(set(body.days) - set(defaults))
        if unknown:
            raise ProblemError(
                422,
                f"{service} applies no retention category {', '.join(unknown)};"
                f" it knows {', '.join(defaults)}.",
                type_="unknown-category",
            )
        async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
            changes = await set_policies(conn, tenant, body.days, principal.key_id)
            await record(
                conn,
                principal,
                request,
                "retention.set",
                area,
                {"service": service, "changes": changes},
                tenant_id=tenant,
            )
            return {**await answer(conn, tenant), "changed": sorted(changes)}

    return router
