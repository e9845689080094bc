"""Postgres access for tenants, API keys and Idempotency-Key answers (schema ``ingest``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rastro_events import ApiKeyRecord, new_event
from rastro_events.topics import AUTH_KEYS
from rastro_kit.auth import Principal
from rastro_kit.outbox import enqueue_event
from rastro_kit.roles import effective_scopes

__all__ = [
    "DbKeyResolver",
    "KeyRow",
    "StoredAnswer",
    "claim_idempotency_key",
    "fetch_keys",
    "key_row",
    "publish_key",
    "store_idempotent_answer",
    "tenant_exists",
]


@dataclass(frozen=True)
class KeyRow:
    id: str
    tenant_id: str
    environment: str
    name: str | None
    scopes: list[str]
    key_hash: str
    key_hint: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    role: str | None = None
    tenants: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "environment": self.environment,
            "name": self.name,
            "scopes": self.scopes,
            "role": self.role,
            "tenants": self.tenants,
            "hint": self.key_hint,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class StoredAnswer:
    request_hash: str
    status_code: int
    body: Any
    content_type: str


async def tenant_exists(conn: Any, tenant_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM tenants WHERE id = $1", tenant_id))


async def publish_key(conn: Any, row: KeyRow) -> None:
    """Tell every service about this key (its hash only) through the outbox."""
    record = ApiKeyRecord(
        key_id=row.id,
        key_hash=row.key_hash,
        tenant_id=row.tenant_id,
        environment=row.environment,
        scopes=row.scopes,
        name=row.name,
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
        role=row.role,
        tenants=row.tenants,
    )
    await enqueue_event(conn, AUTH_KEYS, new_event(record, tenant_id=row.tenant_id, source="/rastro/ingest"))


def key_row(r: Any) -> KeyRow:
    return KeyRow(**{f: r[f] for f in KeyRow.__dataclass_fields__})


async def fetch_keys(conn: Any, tenant_id: str | None = None) -> list[KeyRow]:
    if tenant_id is None:
        rows = await conn.fetch("SELECT * FROM api_keys ORDER BY created_at")
    else:
        rows = await conn.fetch("SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at", tenant_id)
    return [key_row(r) for r in rows]


async def claim_idempotency_key(
    conn: Any, tenant_id: str, key: str, request_hash: str
) -> StoredAnswer | None:
    """Lock the key for this request, or return the answer already stored under it.

    A concurrent request with the same key waits on the row lock and then sees the stored answer."""
    row = await conn.fetchrow(
        "SELECT request_hash, status_code, response, content_type FROM idempotency_keys"
        " WHERE tenant_id = $1 AND key = $2",
        tenant_id,
        key,
    )
    if row is None:
        inserted = await conn.fetchval(
            "INSERT INTO idempotency_keys(tenant_id, key, request_hash, status_code, response, content_type)"
            " VALUES ($1, $2, $3, 0, 'null', '') ON CONFLICT DO NOTHING RETURNING 1",
            tenant_id,
            key,
            request_hash,
        )
        if inserted:
            return None
        row = await conn.fetchrow(
            "SELECT request_hash, status_code, response, content_type FROM idempotency_keys"
            " WHERE tenant_id = $1 AND key = $2",
            tenant_id,
            key,
        )
    return StoredAnswer(
        row["request_hash"], row["status_code"], json.loads(row["response"]), row["content_type"]
    )


async def store_idempotent_answer(
    conn: Any, tenant_id: str, key: str, status: int, body: bytes, content_type: str
) -> None:
    """``body`` is the answer as sent (JSON bytes), stored for the retries of this key."""
    await conn.execute(
        "UPDATE idempotency_keys SET status_code = $3, response = $4, content_type = $5"
        " WHERE tenant_id = $1 AND key = $2",
        tenant_id,
        key,
        status,
        body.decode(),
        content_type,
    )


class DbKeyResolver:
    """Ingest is the owner of keys: it checks them against its own table (revocation is immediate)."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    async def resolve(self, key_hash: str) -> Principal | None:
        row = await self._runtime.pool.fetchrow(
            "SELECT id, tenant_id, scopes, environment, role, tenants FROM api_keys WHERE key_hash = $1"
            " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
            key_hash,
        )
        if row is None:
            return None
        return Principal(
            row["id"],
            row["tenant_id"],
            effective_scopes(row["role"], row["scopes"]),
            row["environment"],
            role=row["role"],
            tenants=frozenset(row["tenants"]),
        )
