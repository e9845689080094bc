"""Subscriptions API (DESIGN §11): endpoints, filters and secrets, per tenant.

Every route needs the ``subscriptions:manage`` scope. A tenant key acts on its own tenant (another
tenant's subscription is a 404, so its existence does not leak); an operator key names the tenant with
``?tenant=`` (required to create, optional to read).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from rastro_kit import audit
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, require_scope, tenant_scope
from rastro_notification.adapters import repository as repo
from rastro_notification.api_checks import (
    check_carriers,
    check_endpoint_url,
    check_event_types,
    check_headers,
    check_secret,
)
from rastro_notification.domain.rate_limit import MIN_RATE_PER_S
from rastro_notification.domain.signing import generate_secret
from rastro_notification.settings import NotificationSettings

__all__ = ["router"]

router = APIRouter(tags=["subscriptions"])
TENANT = Query(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="operator keys: the tenant")
MANAGE = require_scope("subscriptions:manage")
READ = require_scope("subscriptions:read")  # manage implies read (docs/roles.md)


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=4096, examples=["https://hooks.example.com/rastro"])
    event_types: list[str] = Field(default_factory=lambda: ["*"], examples=[["tracking.delivered", "eta.*"]])
    description: str | None = Field(default=None, max_length=500)
    secret: str | None = Field(
        default=None, description="whsec_… (24–64 random bytes, base64); generated if absent"
    )
    enabled: bool = True
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every webhook")
    rate_limit_per_s: float | None = Field(
        default=None, ge=MIN_RATE_PER_S, le=10_000, description="most sends per second"
    )
    carriers: list[str] | None = Field(
        default=None, max_length=50, description="only events of these carriers; null: every carrier"
    )


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, max_length=4096)
    event_types: list[str] | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None
    headers: dict[str, str] | None = None
    rate_limit_per_s: float | None = Field(default=None, ge=MIN_RATE_PER_S, le=10_000)
    carriers: list[str] | None = Field(default=None, max_length=50)


class RotateSecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: str | None = Field(default=None, description="the new whsec_… secret; generated if absent")
    overlap_s: float | None = Field(
        default=None,
        ge=0,
        le=7 * 24 * 3600,
        description="how long the old secret keeps signing too (default: the service's rotation_overlap_s)",
    )


def settings_of(request: Request) -> NotificationSettings:
    settings: NotificationSettings = request.app.state.runtime.settings
    return settings


def pool_of(request: Request) -> Any:
    return request.app.state.runtime.pool


@router.post("/v1/subscriptions", status_code=201, summary="Create a subscription; its secret is returned")
async def create_subscription(
    request: Request,
    response: Response,
    body: SubscriptionIn,
    principal: Principal = MANAGE,
    tenant: str | None = TENANT,
) -> Any:
    tenant_id = tenant_scope(principal, tenant)
    if tenant_id is None:
        raise ProblemError(
            422, "An operator key must name the tenant: ?tenant=<id>.", type_="tenant-required"
        )
    url = check_endpoint_url(body.url, settings_of(request))
    event_types = check_event_types(body.event_types)
    secret = check_secret(body.secret) if body.secret is not None else generate_secret()
    async with pool_of(request).acquire() as conn, conn.transaction():
        sub = await repo.insert_subscription(
            conn,
            tenant_id=tenant_id,
            url=url,
            event_types=event_types,
            description=body.description,
            secret=secret,
            enabled=body.enabled,
            headers=check_headers(body.headers),
            rate_limit_per_s=body.rate_limit_per_s,
            carriers=check_carriers(body.carriers),
        )
        summary = {"url": url, "event_types": event_types, "enabled": body.enabled}
        await audit.record(
            conn, principal, request, "subscription.create", sub.id, summary, tenant_id=tenant_id
        )
    response.headers["Location"] = f"/v1/subscriptions/{sub.id}"
    return sub.public(with_secret=True)


@router.get("/v1/subscriptions", summary="List subscriptions (secrets are not shown)")
async def list_subscriptions(
    request: Request,
    principal: Principal = READ,
    tenant: str | None = TENANT,
    cursor: str | None = None,
    limit: int = Query(default=50, ge=1, le=200),
) -> Any:
    tenant_id = tenant_scope(principal, tenant)
    subs = await repo.list_subscriptions(pool_of(request), tenant_id, cursor, limit)
    return {
        "items": [s.public(with_secret=False) for s in subs],
        "next_cursor": subs[-1].id if len(subs) == limit else None,
    }


@router.get("/v1/subscriptions/{sub_id}", summary="One subscription, with its secret")
async def get_subscription(
    request: Request, sub_id: str, principal: Principal = MANAGE, tenant: str | None = TENANT
) -> Any:
    sub = await owned_subscription(request, sub_id, principal, tenant)
    return sub.public(with_secret=True)


@router.patch(
    "/v1/subscriptions/{sub_id}",
    summary="Change url, event_types, carriers, description, enabled, headers or rate_limit_per_s",
)
async def update_subscription(
    request: Request,
    sub_id: str,
    body: SubscriptionPatch,
    principal: Principal = MANAGE,
    tenant: str | None = TENANT,
) -> Any:
    tenant_id = tenant_scope(principal, tenant)
    changes = _changes(request, body)
    async with pool_of(request).acquire() as conn, conn.transaction():
        sub = (
            await repo.update_subscription(conn, sub_id, tenant_id, changes)
            if changes
            else await repo.get_subscription(conn, sub_id, tenant_id)
        )
        if sub is not None and changes:
            changed = {"changed": sorted(changes), "url": sub.url, "enabled": sub.enabled}
            await audit.record(
                conn, principal, request, "subscription.update", sub_id, changed, tenant_id=sub.tenant_id
            )
    if sub is None:
        raise ProblemError(404, "Not found.")
    return sub.public(with_secret=True)


@router.post(
    "/v1/subscriptions/{sub_id}/rotate-secret",
    summary="Replace the signing secret; the old one keeps signing during the overlap",
)
async def rotate_secret(
    request: Request,
    sub_id: str,
    body: RotateSecretIn | None = None,
    principal: Principal = MANAGE,
    tenant: str | None = TENANT,
) -> Any:
    body = body or RotateSecretIn()
    secret = check_secret(body.secret) if body.secret is not None else generate_secret()
    overlap = body.overlap_s if body.overlap_s is not None else settings_of(request).rotation_overlap_s
    async with pool_of(request).acquire() as conn, conn.transaction():
        sub = await repo.rotate_secret(conn, sub_id, tenant_scope(principal, tenant), secret, overlap)
        if sub is None:
            raise ProblemError(404, "Not found.")
        details = {"overlap_s": overlap}
        await audit.record(
            conn, principal, request, "subscription.rotate_secret", sub_id, details, tenant_id=sub.tenant_id
        )
    return sub.public(with_secret=True)


@router.delete(
    "/v1/subscriptions/{sub_id}", status_code=204, summary="Delete a subscription and its messages"
)
async def delete_subscription(
    request: Request, sub_id: str, principal: Principal = MANAGE, tenant: str | None = TENANT
) -> Response:
    tenant_id = tenant_scope(principal, tenant)
    async with pool_of(request).acquire() as conn, conn.transaction():
        if not await repo.delete_subscription(conn, sub_id, tenant_id):
            raise ProblemError(404, "Not found.")
        await audit.record(conn, principal, request, "subscription.delete", sub_id, tenant_id=tenant_id)
    return Response(status_code=204)


async def owned_subscription(
    request: Request, sub_id: str, principal: Principal, tenant: str | None
) -> repo.Subscription:
    """The subscription if the caller may see it; 404 otherwise (also for another tenant's)."""
    sub = await repo.get_subscription(pool_of(request), sub_id, tenant_scope(principal, tenant))
    if sub is None:
        raise ProblemError(404, "Not found.")
    return sub


def _changes(request: Request, body: SubscriptionPatch) -> dict[str, Any]:
    given = body.model_fields_set
    for name in ("url", "event_types", "enabled", "headers"):
        if name in given and getattr(body, name) is None:
            raise ProblemError(
                422,
                f"{name} may not be null.",
                type_="validation-error",
                errors=[{"field": name, "message": "may not be null"}],
            )
    changes: dict[str, Any] = {name: getattr(body, name) for name in given}
    if "url" in changes:
        changes["url"] = check_endpoint_url(changes["url"], settings_of(request))
    if "event_types" in changes:
        changes["event_types"] = check_event_types(changes["event_types"])
    if "headers" in changes:
        changes["headers"] = check_headers(changes["headers"])
    if "carriers" in changes:
        changes["carriers"] = check_carriers(changes["carriers"])
    return changes
