"""Tenants and API keys. Keys are shown once, stored hashed, and published (hash only) to other services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from rastro_events import new_event_id
from rastro_ingest.adapters.repository import fetch_keys, key_row, publish_key, tenant_exists
from rastro_ingest.api_events import problem_responses
from rastro_ingest.rate_limit import rate_limited
from rastro_kit import audit
from rastro_kit.auth import SCOPES, Principal, generate_api_key, hash_key
from rastro_kit.http import ProblemError, require_key, require_scope, tenant_scope
from rastro_kit.roles import Role, Scope, role_scopes

__all__ = ["router"]

ANY_KEY = require_key()  # any valid key, no scope (GET /v1/keys/self)

router = APIRouter(tags=["tenants and keys"])
ADMIN_WRITE = rate_limited("admin")
EXAMPLE_KEY = {
    "id": "key_01jd5z8q3t6w0k2n9v7r4b1c8e",
    "tenant_id": "acme",
    "environment": "production",
    "name": "erp-integration",
    "scopes": ["events:write", "shipments:read"],
    "hint": "x9Qa",
    "created_at": "2026-11-23T14:05:11.120000+00:00",
    "expires_at": None,
    "revoked_at": None,
}
EXAMPLE_NEW_KEY = {**EXAMPLE_KEY, "key": "rk_live_4mZ0bVnq7D2cXyP1sTqLw8e0aRfx9Qa"}
EXAMPLE_SELF = {
    "id": "key_01jd5z8q3t6w0k2n9v7r4b1c8e",
    "name": "3pl-ops",
    "tenant_id": "acme",
    "operator": False,
    "environment": "production",
    "role": "operator",
    "scopes": ["carriers:manage", "dead-letters:manage", "events:write", "mappings:manage"],
    "tenants": ["acme-outlet"],
    "hint": "x9Qa",
    "created_at": "2026-11-23T14:05:11.120000+00:00",
    "expires_at": None,
}
EXAMPLE_TENANT = {"id": "acme", "name": "ACME Comércio", "created_at": "2026-11-23T14:05:11.120000+00:00"}


def _example(status: int, example: Any, description: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": description, "content": {"application/json": {"example": example}}}}


class TenantIn(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", examples=["acme"])
    name: str = Field(min_length=1, max_length=200, examples=["ACME Comércio"])


class KeyIn(BaseModel):
    name: str | None = Field(default=None, max_length=100, examples=["erp-integration"])
    environment: Literal["production", "sandbox"] = "production"
    scopes: list[Scope] | None = Field(
        default=None, min_length=1, description="explicit scopes (default: events:write, shipments:read)"
    )
    role: Role | None = Field(default=None, description="a named role instead of scopes (docs/roles.md)")
    tenants: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="further tenants this key may act for (a 3PL operator; operator keys only)",
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)

    def grant(self) -> tuple[str | None, list[str]]:
        """(role, scopes to store): a role or scopes, never both (docs/roles.md)."""
        if self.role is not None and self.scopes is not None:
            raise ProblemError(422, "Give a role or scopes, not both.", type_="validation-error")
        if self.role is not None:
            return self.role, sorted(role_scopes(self.role))
        return None, list(self.scopes or ["events:write", "shipments:read"])


class RotateIn(BaseModel):
    overlap_hours: int = Field(
        default=24, ge=0, le=24 * 30, description="the old key keeps working this long"
    )


async def _operator_only(principal: Principal = ADMIN_WRITE) -> Principal:
    # A dependency, not a check in the route: a tenant key is refused before its body is even read.
    if not principal.is_operator:
        raise ProblemError(403, "Only an operator key can create tenants.", type_="forbidden")
    return principal


@router.post(
    "/v1/tenants",
    status_code=201,
    summary="Create a tenant (operator key)",
    responses={**_example(201, EXAMPLE_TENANT, "created"), **problem_responses(401, 403, 409, 422, 429, 503)},
)
async def create_tenant(
    request: Request, body: TenantIn, principal: Principal = Depends(_operator_only)
) -> Any:
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        created = await conn.fetchval(
            "INSERT INTO tenants(id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING created_at",
            body.id,
            body.name,
        )
        if created is None:
            raise ProblemError(409, f"Tenant {body.id!r} already exists.", type_="tenant-exists")
        await audit.record(
            conn, principal, request, "tenant.create", body.id, {"name": body.name}, tenant_id=body.id
        )
    return {"id": body.id, "name": body.name, "created_at": created.isoformat()}


@router.get(
    "/v1/tenants",
    summary="List tenants (operator key) or your own",
    responses={
        **_example(200, {"items": [EXAMPLE_TENANT], "next_cursor": None}, "tenants"),
        **problem_responses(401, 403, 503),
    },
)
async def list_tenants(request: Request, principal: Principal = require_scope("admin")) -> Any:
    pool = request.app.state.runtime.pool
    rows = await pool.fetch(
        "SELECT id, name, created_at FROM tenants WHERE $1::text IS NULL OR id = $1 ORDER BY id",
        principal.tenant_id,
    )
    return {
        "items": [
            {"id": r["id"], "name": r["name"], "created_at": r["created_at"].isoformat()} for r in rows
        ],
        "next_cursor": None,
    }


@router.post(
    "/v1/tenants/{tenant_id}/keys",
    status_code=201,
    summary="Create an API key (shown once)",
    description="The answer's `key` is the only time the key is shown; Rastro keeps its hash.",
    responses={
        **_example(201, EXAMPLE_NEW_KEY, "the key, shown once"),
        **problem_responses(401, 403, 404, 422, 429, 503),
    },
)
async def create_key(
    request: Request, tenant_id: str, body: KeyIn, principal: Principal = ADMIN_WRITE
) -> Any:
    tenant_scope(principal, tenant_id)
    role, scopes = body.grant()
    if "admin" in scopes and not principal.is_operator and "admin" not in principal.scopes:
        raise ProblemError(403, "Only admins can create admin keys.", type_="forbidden")
    if body.tenants and not principal.is_operator:
        raise ProblemError(403, "Only an operator key can make a 3PL key.", type_="forbidden")
    expires = datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    grant = KeyGrant(scopes, role, sorted(set(body.tenants) - {tenant_id}))
    return await _new_key(request, tenant_id, body.name, body.environment, grant, expires, "key.create")


@router.get(
    "/v1/tenants/{tenant_id}/keys",
    summary="List a tenant's keys (never the keys themselves)",
    responses={
        **_example(200, {"items": [EXAMPLE_KEY], "next_cursor": None}, "keys"),
        **problem_responses(401, 403, 404, 422, 503),
    },
)
async def list_keys(request: Request, tenant_id: str, principal: Principal = require_scope("admin")) -> Any:
    tenant_scope(principal, tenant_id)
    async with request.app.state.runtime.pool.acquire() as conn:
        if not await tenant_exists(conn, tenant_id):
            raise ProblemError(404, "Not found.")
        return {"items": [k.public() for k in await fetch_keys(conn, tenant_id)], "next_cursor": None}


@router.get(
    "/v1/keys/self",
    summary="Who am I: the calling key's tenant, role and scopes (any valid key)",
    description="Never the key itself. `tenant_id` is null and `operator` true for the operator key, which"
    " may act for every tenant; `tenants` lists the further tenants a 3PL key may act for.",
    responses={**_example(200, EXAMPLE_SELF, "the calling key"), **problem_responses(401, 503)},
)
async def key_self(request: Request, principal: Principal = ANY_KEY) -> Any:
    row = None
    if not principal.is_operator:
        row = await request.app.state.runtime.pool.fetchrow(
            "SELECT name, key_hint, created_at, expires_at FROM api_keys WHERE id = $1", principal.key_id
        )
    return {
        "id": principal.key_id,
        "name": row["name"] if row else None,
        "tenant_id": principal.tenant_id,
        "operator": principal.is_operator,
        "environment": principal.environment,
        "role": principal.role,
        "scopes": sorted(principal.scopes),
        "tenants": sorted(principal.tenants),
        "hint": row["key_hint"] if row else None,
        "created_at": row["created_at"].isoformat() if row else None,
        "expires_at": row["expires_at"].isoformat() if row and row["expires_at"] else None,
    }


@router.delete(
    "/v1/tenants/{tenant_id}/keys/{key_id}",
    status_code=204,
    summary="Revoke a key at once",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
async def revoke_key(
    request: Request, tenant_id: str, key_id: str, principal: Principal = ADMIN_WRITE
) -> Response:
    tenant_scope(principal, tenant_id)
    await _expire_key(request, tenant_id, key_id, when=None, action="key.revoke")
    return Response(status_code=204)


@router.post(
    "/v1/tenants/{tenant_id}/keys/{key_id}/rotate",
    status_code=201,
    summary="Replace a key: a new key now, the old one keeps working for the overlap",
    responses={
        **_example(201, EXAMPLE_NEW_KEY, "the new key, shown once"),
        **problem_responses(401, 403, 404, 422, 429, 503),
    },
)
async def rotate_key(
    request: Request,
    tenant_id: str,
    key_id: str,
    body: RotateIn,
    principal: Principal = ADMIN_WRITE,
) -> Any:
    tenant_scope(principal, tenant_id)
    old = await _expire_key(
        request,
        tenant_id,
        key_id,
        when=datetime.now(UTC) + timedelta(hours=body.overlap_hours),
        action="key.rotate",
    )
    grant = KeyGrant(list(old["scopes"]), old["role"], list(old["tenants"]))
    return await _new_key(request, tenant_id, old["name"], old["environment"], grant, None, "key.create")


@dataclass(frozen=True)
class KeyGrant:
    scopes: list[str]
    role: str | None = None
    tenants: list[str] = field(default_factory=list)


async def _new_key(
    request: Request,
    tenant_id: str,
    name: str | None,
    environment: str,
    grant: KeyGrant,
    expires: datetime | None,
    action: str,
) -> dict[str, Any]:
    unknown = set(grant.scopes) - set(SCOPES)
    if unknown:
        raise ProblemError(422, f"Unknown scopes: {sorted(unknown)}", type_="validation-error")
    key = generate_api_key(environment)
    key_id = f"key_{new_event_id().lower()}"
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        if not await tenant_exists(conn, tenant_id):
            raise ProblemError(404, "Not found.")
        row = await conn.fetchrow(
            "INSERT INTO api_keys(id, tenant_id, environment, name, scopes, key_hash, key_hint, expires_at,"
            " role, tenants) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
            key_id,
            tenant_id,
            environment,
            name,
            grant.scopes,
            hash_key(key),
            key[-4:],
            expires,
            grant.role,
            grant.tenants,
        )
        await publish_key(conn, key_row(row))
        details = {"role": grant.role, "scopes": grant.scopes, "tenants": grant.tenants, "env": environment}
        await audit.record(conn, None, request, action, key_id, details, tenant_id=tenant_id)
    return {**key_row(row).public(), "key": key}


async def _expire_key(
    request: Request, tenant_id: str, key_id: str, when: datetime | None, action: str
) -> Any:
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        sql = (
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND tenant_id = $2 RETURNING *"
            if when is None
            else "UPDATE api_keys SET expires_at = LEAST(coalesce(expires_at, $3), $3) WHERE id = $1"
            " AND tenant_id = $2 AND revoked_at IS NULL RETURNING *"
        )
        args = (key_id, tenant_id) if when is None else (key_id, tenant_id, when)
        row = await conn.fetchrow(sql, *args)
        if row is None:
            raise ProblemError(404, "Not found.")
        await publish_key(conn, key_row(row))
        expiry = {"expires_at": when.isoformat()} if when else {}
        await audit.record(conn, None, request, action, key_id, expiry, tenant_id=tenant_id)
        return row
