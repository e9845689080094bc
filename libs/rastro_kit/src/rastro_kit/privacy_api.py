"""Data-subject requests over HTTP (LGPD art. 18, docs/privacy.md): the routes every service that holds
personal data serves under its own prefix, ``POST /v1/privacy/<area>/export`` and ``…/erase``, and the
key operations: ``…/rotate-keys`` (new data keys), ``…/rewrap-keys`` (onto a new master key) and
``…/shred-tenant`` (crypto-shredding: every key of a tenant destroyed).

The body names the person by e-mail, phone and/or document (CPF/CNPJ); the service turns those into
blind indexes (``personal_data.blind_index``) and finds its rows by them, never by decrypting every row.
Scope ``privacy:manage``; an operator key names the tenant in the body. Each request is audited in the
same transaction (``rastro_kit.audit``) under a request id (``dsr_…``), never the person's identifiers
nor their blind indexes: after an erasure nothing links the trail back to the person. Key operations
are audited with key ids and counts, never key material.
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
from rastro_kit.master_key import current_kek_id
from rastro_kit.personal_data import (
    EncryptedColumn,
    blind_index,
    destroy_tenant_keys,
    drop_retired_keys,
    rewrap_data_keys,
    rotate_column,
    rotate_tenant_key,
)

__all__ = [
    "DataSubject",
    "DataSubjectRequest",
    "RewrapRequest",
    "RotationRequest",
    "ShredRequest",
    "privacy_router",
]
TENANT_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"

PRIVACY = require_scope("privacy:manage")


class DataSubjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    document: str | None = Field(default=None, max_length=32, description="CPF or CNPJ")
    tenant: str | None = Field(default=None, pattern=TENANT_ID, description="operator keys: the tenant")
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


class RewrapRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str | None = Field(
        default=None, pattern=TENANT_ID, description="operator keys: one tenant; default every tenant"
    )
    batch: int = Field(default=500, ge=1, le=10_000)


class ShredRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str = Field(pattern=TENANT_ID, description="the tenant whose keys are destroyed")
    confirm: str = Field(max_length=64, description="the tenant id again: shredding is irreversible")


class DataSubject(BaseModel):
    """Who a request is about, as the service looks them up: the tenant and the blind indexes."""

    model_config = ConfigDict(frozen=True)
    tenant_id: str
    email: str | None = None
    phone: str | None = None
    document: str | None = None
    indexes: tuple[str, ...]

    @classmethod
    async def of(cls, conn: Any, tenant_id: str, body: DataSubjectRequest) -> DataSubject:
        given = {k: getattr(body, k) for k in ("email", "phone", "document") if getattr(body, k)}
        indexes = tuple([await blind_index(conn, tenant_id, kind, value) for kind, value in given.items()])
        return cls(tenant_id=tenant_id, indexes=indexes, **given)


Export = Callable[[Any, DataSubject], Awaitable[dict[str, Any]]]
Erase = Callable[[Any, DataSubject], Awaitable[dict[str, int]]]


def privacy_router(
    area: str, service: str, export: Export, erase: Erase, columns: Sequence[EncryptedColumn]
) -> APIRouter:
    """``/v1/privacy/<area>/export`` answers what ``export`` finds; ``…/erase`` runs ``erase`` and answers
    its report (``{"<table>": rows removed}``), both audited in the transaction that reads or erases;
    ``…/rotate-keys`` gives tenants new data keys and re-encrypts ``columns`` in batches; ``…/rewrap-keys``
    re-wraps the keys onto the current master key; ``…/shred-tenant`` destroys a tenant's keys."""
    router = APIRouter(prefix=f"/v1/privacy/{area}", tags=["privacy"])

    async def data_subject_request(
        request: Request,
        body: DataSubjectRequest,
        principal: Principal,
        kind: str,
        run: Callable[[Any, DataSubject], Awaitable[Any]],
        summary: Callable[[Any], Any],
    ) -> tuple[DataSubject, str, Any]:
        """Run ``export`` or ``erase`` for the person ``body`` names and audit it (``details`` carry
        ``summary`` of the result, never the person) in the same transaction; (who, request id, result)."""
        tenant_id = tenant_scope(principal, body.tenant)
        if tenant_id is None:
            raise ProblemError(422, "An operator key must name the tenant.", type_="tenant-required")
        ref = body.request_id or f"dsr_{secrets.token_hex(8)}"
        async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
            who = await DataSubject.of(conn, tenant_id, body)
            result = await run(conn, who)
            details = {"service": service, **summary(result)}
            await record_data_subject_request(
                conn, principal, request, kind, ref, tenant_id=who.tenant_id, details=details
            )
        return who, ref, result

    @router.post("/export", summary="Everything this service holds about one person, decrypted")
    async def export_route(
        request: Request, body: DataSubjectRequest, principal: Principal = PRIVACY
    ) -> dict[str, Any]:
        who, ref, found = await data_subject_request(
            request,
            body,
            principal,
            "access",
            export,
            lambda found: {"found": {k: len(v) for k, v in found.items() if isinstance(v, list)}},
        )
        return {"service": service, "tenant": who.tenant_id, "request_id": ref, "data": found}

    @router.post("/erase", summary="Erase everything this service holds about one person; a report")
    async def erase_route(
        request: Request, body: DataSubjectRequest, principal: Principal = PRIVACY
    ) -> dict[str, Any]:
        who, ref, removed = await data_subject_request(
            request, body, principal, "erasure", erase, lambda removed: {"removed": removed}
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

    @router.post("/rewrap-keys", summary="Re-wrap every key onto the current master key, in batches")
    async def rewrap_route(
        request: Request, body: RewrapRequest, principal: Principal = PRIVACY
    ) -> dict[str, Any]:
        tenant_id = tenant_scope(principal, body.tenant)
        async with request.app.state.runtime.pool.acquire() as conn:
            counts = await rewrap_data_keys(conn, batch=body.batch, tenant_id=tenant_id)
            kek = current_kek_id()
            await record(conn, principal, request, "privacy.rewrap_keys", kek, counts, tenant_id=tenant_id)
        return {"service": service, "tenant": tenant_id, "kek_id": kek, **counts}

    @router.post("/shred-tenant", summary="Crypto-shred a tenant: destroy its keys (irreversible)")
    async def shred_route(
        request: Request, body: ShredRequest, principal: Principal = PRIVACY
    ) -> dict[str, Any]:
        if body.confirm != body.tenant:
            raise ProblemError(
                422,
                "Repeat the tenant id in confirm: shredding is irreversible.",
                type_="confirmation-required",
            )
        tenant_id = tenant_scope(principal, body.tenant)
        assert tenant_id is not None  # named in the body
        async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
            destroyed = await destroy_tenant_keys(conn, tenant_id)
            await record(
                conn,
                principal,
                request,
                "privacy.shred_tenant",
                tenant_id,
                {"service": service, "keys_destroyed": destroyed},
                tenant_id=tenant_id,
            )
        return {"service": service, "tenant": tenant_id, "keys_destroyed": destroyed}

    return router
