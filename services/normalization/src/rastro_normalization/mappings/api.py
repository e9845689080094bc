"""``/v1/mappings``: a tenant's carrier aliases, service aliases and status overrides (de-para).

Reading needs ``shipments:read``; changing needs ``mappings:manage`` (``admin`` keys and the operator
key hold every scope). Every change bumps the tenant's version and appends to ``/v1/mappings/history``.
An operator key names the tenant with ``?tenant=``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from rastro_kit import audit
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, require_scope, tenant_scope
from rastro_normalization.domain.carriers import CARRIERS, fold_carrier_name, resolve_carrier
from rastro_normalization.domain.mappings import (
    MappingError,
    check_alias,
    check_service_id,
    make_override,
)
from rastro_normalization.mappings import repository as repo

__all__ = ["MANAGE_SCOPE", "router"]

MANAGE_SCOPE = "mappings:manage"
router = APIRouter(prefix="/v1/mappings", tags=["mappings"])
CREATED: dict[int | str, dict[str, Any]] = {
    201: {"description": "created (a replaced mapping answers 200)", "content": {"application/json": {}}}
}
Reader = Annotated[Principal, require_scope("shipments:read")]
Manager = Annotated[Principal, require_scope(MANAGE_SCOPE)]
TenantParam = Annotated[str | None, Query(description="operator keys only")]


class CarrierAliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    carrier: str = Field(description="canonical carrier id, e.g. correios", examples=["correios"])


class ServiceAliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: str = Field(description="canonical service id, e.g. sedex_10", examples=["sedex_10"])


class StatusOverrideBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(examples=["exception"])
    substatus: str | None = Field(
        default=None, description="default: <status>.other", examples=["exception.lost"]
    )
    descriptions: dict[str, str] = Field(
        default_factory=dict, description="by language tag (pt-BR, en, es, fr)", max_length=8
    )


def _tenant(principal: Principal, tenant: str | None) -> str:
    tenant_id = tenant_scope(principal, tenant)
    if tenant_id is None:
        raise ProblemError(422, "Operator keys must name the tenant: ?tenant=<id>.", type_="tenant-required")
    return tenant_id


def _invalid(exc: MappingError) -> ProblemError:
    return ProblemError(422, str(exc), type_="validation-error")


def _carrier_key(carrier: str) -> str:
    resolved = resolve_carrier(carrier)
    if resolved is None or resolved not in CARRIERS:
        raise ProblemError(
            422, f"Unknown carrier {carrier!r}; known: {sorted(CARRIERS)}.", type_="unknown-carrier"
        )
    return resolved


def _alias_key(alias: str) -> tuple[str, str]:
    try:
        text = check_alias(alias)
    except MappingError as exc:
        raise _invalid(exc) from None
    return text, fold_carrier_name(text)


@router.get("", summary="All of the tenant's mappings, with their version")
async def list_mappings(request: Request, principal: Reader, tenant: TenantParam = None) -> dict[str, Any]:
    tenant_id = _tenant(principal, tenant)
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        version = await repo.current_version(conn, tenant_id)
        found = await repo.fetch_mappings(conn, tenant_id)
    return {"tenant": tenant_id, "version": version, "carriers": found["carrier"],
            "services": found["service"], "statuses": found["status"]}  # fmt: skip


@router.get("/history", summary="Every change, newest first: who, when, before and after")
async def history(
    request: Request,
    principal: Reader,
    tenant: TenantParam = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> dict[str, Any]:
    tenant_id = _tenant(principal, tenant)
    if cursor is not None and not cursor.isdigit():
        raise ProblemError(422, "The cursor is not valid.", type_="invalid-cursor")
    async with request.app.state.runtime.pool.acquire() as conn:
        rows = await repo.fetch_history(conn, tenant_id, int(cursor) if cursor else None, limit + 1)
    more = len(rows) > limit
    return {"items": rows[:limit], "next_cursor": str(rows[limit - 1]["version"]) if more else None}


async def _audit(
    conn: Any, principal: Principal, request: Request, action: str, kind: str, tenant_id: str,
    key: tuple[str, ...], change: repo.Change,
) -> None:  # fmt: skip
    details = {"version": change.version, "before": change.before, "after": change.after}
    await audit.record(
        conn, principal, request, action, f"{kind}:{'/'.join(key)}", details, tenant_id=tenant_id
    )


async def _get(request: Request, kind: str, tenant_id: str, key: tuple[str, ...]) -> dict[str, Any]:
    async with request.app.state.runtime.pool.acquire() as conn:
        found = await repo.fetch_mapping(conn, kind, tenant_id, key)
    if found is None:
        raise ProblemError(404, f"No {kind} mapping {'/'.join(key)!r}.", type_="not-found")
    return found


async def _put(
    request: Request, response: Response, kind: str, tenant_id: str, key: tuple[str, ...],
    values: dict[str, Any], principal: Principal,
) -> dict[str, Any]:  # fmt: skip
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        change = await repo.upsert_mapping(conn, kind, tenant_id, key, values, principal.key_id)
        if change is not None:
            await _audit(conn, principal, request, "mapping.put", kind, tenant_id, key, change)
        version = await repo.current_version(conn, tenant_id)
        current = await repo.fetch_mapping(conn, kind, tenant_id, key)
    assert current is not None
    response.status_code = 201 if change is not None and change.before is None else 200
    return {**current, "version": version, "changed": change is not None}


async def _delete(
    request: Request, kind: str, tenant_id: str, key: tuple[str, ...], principal: Principal
) -> Response:
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        change = await repo.delete_mapping(conn, kind, tenant_id, key, principal.key_id)
        if change is not None:
            await _audit(conn, principal, request, "mapping.delete", kind, tenant_id, key, change)
    if change is None:
        raise ProblemError(404, f"No {kind} mapping {'/'.join(key)!r}.", type_="not-found")
    return Response(status_code=204, headers={"X-Mappings-Version": str(change.version)})


@router.get("/carriers/{alias}", summary="One carrier alias")
async def get_carrier_alias(
    request: Request, principal: Reader, alias: str, tenant: TenantParam = None
) -> Any:
    return await _get(request, "carrier", _tenant(principal, tenant), (_alias_key(alias)[1],))


@router.put(
    "/carriers/{alias}",
    summary="Map a carrier name to a carrier (created 201, replaced 200)",
    responses=CREATED,
)
async def put_carrier_alias(
    request: Request, response: Response, principal: Manager, alias: str, body: CarrierAliasBody,
    tenant: TenantParam = None,
) -> Any:  # fmt: skip
    text, key = _alias_key(alias)
    values = {"alias": text, "carrier": _carrier_key(body.carrier)}
    return await _put(request, response, "carrier", _tenant(principal, tenant), (key,), values, principal)


@router.delete("/carriers/{alias}", status_code=204, summary="Remove a carrier alias")
async def delete_carrier_alias(
    request: Request, principal: Manager, alias: str, tenant: TenantParam = None
) -> Response:
    return await _delete(request, "carrier", _tenant(principal, tenant), (_alias_key(alias)[1],), principal)


@router.get("/services/{alias}", summary="One service alias")
async def get_service_alias(
    request: Request, principal: Reader, alias: str, tenant: TenantParam = None
) -> Any:
    return await _get(request, "service", _tenant(principal, tenant), (_alias_key(alias)[1],))


@router.put(
    "/services/{alias}", summary="Map a service name or code to a canonical service", responses=CREATED
)
async def put_service_alias(
    request: Request, response: Response, principal: Manager, alias: str, body: ServiceAliasBody,
    tenant: TenantParam = None,
) -> Any:  # fmt: skip
    text, key = _alias_key(alias)
    try:
        values = {"alias": text, "service": check_service_id(body.service)}
    except MappingError as exc:
        raise _invalid(exc) from None
    return await _put(request, response, "service", _tenant(principal, tenant), (key,), values, principal)


@router.delete("/services/{alias}", status_code=204, summary="Remove a service alias")
async def delete_service_alias(
    request: Request, principal: Manager, alias: str, tenant: TenantParam = None
) -> Response:
    return await _delete(request, "service", _tenant(principal, tenant), (_alias_key(alias)[1],), principal)


def _status_key(carrier: str, code: str) -> tuple[str, str]:
    try:
        override = make_override(_carrier_key(carrier), code, "pending", None, {})
    except MappingError as exc:
        raise _invalid(exc) from None
    return override.carrier, override.code


@router.get("/statuses/{carrier}/{code}", summary="One status override")
async def get_status_override(
    request: Request, principal: Reader, carrier: str, code: str, tenant: TenantParam = None
) -> Any:
    return await _get(request, "status", _tenant(principal, tenant), _status_key(carrier, code))


@router.put(
    "/statuses/{carrier}/{code}",
    summary="Map a carrier code to a status (wins over the code table)",
    responses=CREATED,
)
async def put_status_override(
    request: Request, response: Response, principal: Manager, carrier: str, code: str,
    body: StatusOverrideBody, tenant: TenantParam = None,
) -> Any:  # fmt: skip
    key = _status_key(carrier, code)
    try:
        override = make_override(key[0], key[1], body.status, body.substatus, body.descriptions)
    except MappingError as exc:
        raise _invalid(exc) from None
    values = {"status": override.status.value, "substatus": override.substatus,
              "descriptions": dict(override.descriptions)}  # fmt: skip
    return await _put(request, response, "status", _tenant(principal, tenant), key, values, principal)


@router.delete("/statuses/{carrier}/{code}", status_code=204, summary="Remove a status override")
async def delete_status_override(
    request: Request, principal: Manager, carrier: str, code: str, tenant: TenantParam = None
) -> Response:
    return await _delete(request, "status", _tenant(principal, tenant), _status_key(carrier, code), principal)
