"""Data-subject requests over HTTP (LGPD art. 18, docs/privacy.md): the routes every service that holds
personal data serves under its own prefix, ``POST /v1/privacy/<area>/export`` and ``…/erase``.

The body names the person by e-mail, phone and/or document (CPF/CNPJ); the service turns those into
blind indexes (``personal_data.blind_index``) and finds its rows by them, never by decrypting every row.
Scope ``privacy:manage``; an operator key names the tenant in the body. Each request is audited in the
same transaction (``rastro_kit.audit``) under a request id (``dsr_…``), never the person's identifiers
nor their blind indexes: after an erasure nothing links the trail back to the person.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rastro_kit.audit import record, record_data_subject_request
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, require_scope, tenant_scope
from rastro_kit.personal_data import (
    EncryptedColumn,
    blind_index,
    drop_retired_keys,
    rotate_column,
    rotate_tenant_key,
)

__all__ = ["DataSubject", "DataSubjectRequest", "RotationRequest", "privacy_router"]

PRIVACY = require_scope("privacy:manage")


class DataSubjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    document: str | None = Field(default=None, max_length=32, description="CPF or CNPJ")
    tenant: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="operator keys: the tenant"
    )
    request_id: str | None = Field(
        default=None,
        pattern=r"^dsr_[a-z0-9]{8,32}$",
        description="the audit reference of the request (one per request across services); default: new",
    )

    @model_validator(mode="after")
    def _someone(self) -> DataSubjectRequest:
        if not (self.email or self.phone or self.document):
            raise ValueError("name the person by email, phone and/or document")
        return self


class RotationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str | None = Field(default=None, description="operator keys: one tenant; default every tenant")
    new_key: bool = Field(
        default=True, description="false resumes an interrupted rotation: re-encrypt onto the active key"
    )
    batch: int = Field(default=500, ge=1, le=10_000)


class DataSubject(BaseModel):
    """Who a request is about, as the service looks them up: the tenant and the blind indexes."""

    model_config = ConfigDict(frozen=True)
    tenant_id: str
    email: str | None = None
    phone: str | None = None
    document: str | None = None
    indexes: tuple[str, ...]

    @classmethod
    def of(cls, tenant_id: str, body: DataSubjectRequest) -> DataSubject:
        given = {k: getattr(body, k) for k in ("email", "phone", "document") if getattr(body, k)}
        indexes = tuple(blind_index(tenant_id, kind, value) for kind, value in given.items())
        return cls(tenant_id=tenant_id, indexes=indexes, **given)


Export = Callable[[Any, DataSubject], Awaitable[dict[str, Any]]]
Erase = Callable[[Any, DataSubject], Awaitable[dict[str, int]]]


def privacy_router(
    area: str, service: str, export: Export, erase: Erase, columns: Sequence[EncryptedColumn]
) -> APIRouter:
    """``/v1/privacy/<area>/export`` answers what ``export`` finds; ``…/erase`` runs ``erase`` and answers
    its report (``{"<table>": rows removed}``), both audited in the transaction that reads or erases;
    ``…/rotate-keys`` gives tenants new data keys and re-encrypts ``columns`` in batches."""
    router = APIRouter(prefix=f"/v1/privacy/{area}", tags=["privacy"])

    def subject(principal: Principal, body: DataSubjectRequest) -> DataSubject:
        tenant_id = tenant_scope(principal, body.tenant)
        if tenant_id is None:
            raise ProblemError(422, "An operator key must name the tenant.", type_="tenant-required")
        return DataSubject.of(tenant_id, body)

    @router.post("/export", summary="Everything this service holds about one person, decrypted")
    async def export_route(
        request: Request, body: DataSubjectRequest, principal: Principal = PRIVACY
    ) -> dict[str, Any]:
        who, ref = subject(principal, body), body.request_id or f"dsr_{secrets.token_hex(8)}"
        async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
            found = await export(conn, who)
            counts = {k: len(v) for k, v in found.items() if isinstance(v, list)}
            await record_data_subject_request(
                conn,
                principal,
                request,
                "access",
                ref,
                tenant_id=who.tenant_id,
                details={"service": service, "found": counts},
            )
        return {"service": service, "tenant": who.tenant_id, "request_id": ref, "data": found}

    @router.post("/erase", summary="Erase everything this service holds about one person; a report")
    async def erase_route(
        request: Request, body: DataSubjectRequest, principal: Principal = PRIVACY
    ) -> dict[str, Any]:
        who, ref = subject(principal, body), body.request_id or f"dsr_{secrets.token_hex(8)}"
        async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
            removed = await erase(conn, who)
            await record_data_subject_request(
                conn,
                principal,
                request,
                "erasure",
                ref,
                tenant_id=who.tenant_id,
                details={"service": service, "removed": removed},
            )
        return {"service": service, "tenant": who.tenant_id, "request_id": ref, "removed": removed}

    @router.post("/rotate-keys", summary="New data keys; re-encrypt every sealed value in batches")
    async def rotate_route(
        request: Request, body: RotationRequest, principal: Principal = PRIVACY
    ) -> dict[str, Any]:
        tenant_id = tenant_scope(principal, body.tenant)
        async with request.app.state.runtime.pool.acquire() as conn:
            tenants = (
                [tenant_id]
                if tenant_id
                else [r["tenant_id"] for r in await conn.fetch("SELECT DISTINCT tenant_id FROM data_keys")]
            )
            report = []
            for tenant in tenants:
                key_id = await rotate_tenant_key(conn, tenant) if body.new_key else None
                counts = {c.aad: await rotate_column(conn, tenant, c, batch=body.batch) for c in columns}
                dropped = await drop_retired_keys(conn, tenant, columns)
                await record(
                    conn,
                    principal,
                    request,
                    "privacy.rotate_keys",
                    key_id,
                    {"reencrypted": counts},
                    tenant_id=tenant,
                )
                report.append(
                    {"tenant": tenant, "key_id": key_id, "reencrypted": counts, "keys_dropped": dropped}
                )
        return {"service": service, "tenants": report}

    return router
