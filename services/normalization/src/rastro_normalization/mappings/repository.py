"""Postgres access for tenant mappings: the three mapping tables, the version row, the audit trail.

Every change runs in the caller's transaction: it locks the tenant's version row (so concurrent changes
of one tenant serialize), writes the mapping, bumps the version and appends one ``mapping_changes`` row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rastro_events import Status
from rastro_normalization.domain.mappings import StatusOverride, TenantMappings

__all__ = [
    "KINDS",
    "Change",
    "current_version",
    "delete_mapping",
    "fetch_history",
    "fetch_mapping",
    "fetch_mappings",
    "load_mappings",
    "upsert_mapping",
]


@dataclass(frozen=True)
class _Kind:
    table: str
    key_columns: tuple[str, ...]
    value_columns: tuple[str, ...]


KINDS: dict[str, _Kind] = {
    "carrier": _Kind("carrier_aliases", ("alias_key",), ("alias", "carrier")),
    "service": _Kind("service_aliases", ("alias_key",), ("alias", "service")),
    "status": _Kind("status_overrides", ("carrier", "code"), ("status", "substatus", "descriptions")),
}


@dataclass(frozen=True)
class Change:
    version: int
    before: dict[str, Any] | None
    after: dict[str, Any] | None


async def current_version(conn: Any, tenant_id: str) -> int:
    version = await conn.fetchval("SELECT version FROM mapping_versions WHERE tenant_id = $1", tenant_id)
    return int(version or 0)


async def load_mappings(conn: Any, tenant_id: str) -> TenantMappings:
    """All of a tenant's mappings, with the version read first (a later change only forces a reload)."""
    version = await current_version(conn, tenant_id)
    if version == 0:
        return TenantMappings()
    carriers = await conn.fetch("SELECT alias, carrier FROM carrier_aliases WHERE tenant_id = $1", tenant_id)
    services = await conn.fetch(
        "SELECT alias_key, service FROM service_aliases WHERE tenant_id = $1", tenant_id
    )
    overrides = await conn.fetch("SELECT * FROM status_overrides WHERE tenant_id = $1", tenant_id)
    return TenantMappings(
        version=version,
        carrier_aliases=MappingProxyType({r["alias"]: r["carrier"] for r in carriers}),
        service_aliases=MappingProxyType({r["alias_key"]: r["service"] for r in services}),
        overrides=MappingProxyType({(r["carrier"], r["code"]): _override(r) for r in overrides}),
    )


def _override(r: Any) -> StatusOverride:
    texts = json.loads(r["descriptions"])
    return StatusOverride(
        r["carrier"], r["code"], Status(r["status"]), r["substatus"], MappingProxyType(texts)
    )


async def fetch_mappings(conn: Any, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, spec in KINDS.items():
        order = ", ".join(spec.key_columns)
        rows = await conn.fetch(
            f"SELECT * FROM {spec.table} WHERE tenant_id = $1 ORDER BY {order}", tenant_id
        )
        out[kind] = [_row(kind, r) for r in rows]
    return out


async def fetch_mapping(conn: Any, kind: str, tenant_id: str, key: tuple[str, ...]) -> dict[str, Any] | None:
    spec = KINDS[kind]
    where = " AND ".join(f"{c} = ${i}" for i, c in enumerate(spec.key_columns, 2))
    row = await conn.fetchrow(f"SELECT * FROM {spec.table} WHERE tenant_id = $1 AND {where}", tenant_id, *key)
    return _row(kind, row) if row is not None else None


async def upsert_mapping(
    conn: Any, kind: str, tenant_id: str, key: tuple[str, ...], values: dict[str, Any], changed_by: str
) -> Change | None:
    """Create or replace one mapping; None when it already held exactly these values (no new version)."""
    spec = KINDS[kind]
    version = await _lock_version(conn, tenant_id)
    before = await fetch_mapping(conn, kind, tenant_id, key)
    if before is not None and all(before[c] == values[c] for c in spec.value_columns):
        return None
    columns = (*spec.key_columns, *spec.value_columns)
    params = [*key, *(_sql_value(values[c]) for c in spec.value_columns)]
    marks = ", ".join(f"${i}" for i in range(2, len(columns) + 2))
    updates = ", ".join(f"{c} = excluded.{c}" for c in spec.value_columns)
    conflict = ", ".join(spec.key_columns)
    await conn.execute(
        f"INSERT INTO {spec.table} (tenant_id, {', '.join(columns)}) VALUES ($1, {marks})"
        f" ON CONFLICT (tenant_id, {conflict}) DO UPDATE SET {updates}, updated_at = now()",
        tenant_id,
        *params,
    )
    after = await fetch_mapping(conn, kind, tenant_id, key)
    return await _record(conn, tenant_id, version + 1, kind, key, before, after, changed_by)


async def delete_mapping(
    conn: Any, kind: str, tenant_id: str, key: tuple[str, ...], changed_by: str
) -> Change | None:
    """Remove one mapping; None when there was none."""
    spec = KINDS[kind]
    version = await _lock_version(conn, tenant_id)
    before = await fetch_mapping(conn, kind, tenant_id, key)
    if before is None:
        return None
    where = " AND ".join(f"{c} = ${i}" for i, c in enumerate(spec.key_columns, 2))
    await conn.execute(f"DELETE FROM {spec.table} WHERE tenant_id = $1 AND {where}", tenant_id, *key)
    return await _record(conn, tenant_id, version + 1, kind, key, before, None, changed_by)


async def fetch_history(
    conn: Any, tenant_id: str, before_version: int | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM mapping_changes WHERE tenant_id = $1 AND ($2::bigint IS NULL OR version < $2)"
        " ORDER BY version DESC LIMIT $3",
        tenant_id,
        before_version,
        limit,
    )
    return [
        {
            "version": r["version"],
            "kind": r["kind"],
            "key": r["key"],
            "action": r["action"],
            "before": json.loads(r["before"]) if r["before"] else None,
            "after": json.loads(r["after"]) if r["after"] else None,
            "changed_by": r["changed_by"],
            "changed_at": r["changed_at"].isoformat(),
        }
        for r in rows
    ]


async def _lock_version(conn: Any, tenant_id: str) -> int:
    await conn.execute(
        "INSERT INTO mapping_versions (tenant_id, version) VALUES ($1, 0) ON CONFLICT DO NOTHING", tenant_id
    )
    version = await conn.fetchval(
        "SELECT version FROM mapping_versions WHERE tenant_id = $1 FOR UPDATE", tenant_id
    )
    return int(version)


async def _record(
    conn: Any,
    tenant_id: str,
    version: int,
    kind: str,
    key: tuple[str, ...],
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    changed_by: str,
) -> Change:
    await conn.execute(
        "UPDATE mapping_versions SET version = $2, updated_at = now() WHERE tenant_id = $1",
        tenant_id,
        version,
    )
    action = "created" if before is None else "deleted" if after is None else "updated"
    await conn.execute(
        "INSERT INTO mapping_changes (tenant_id, version, kind, key, action, before, after, changed_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        tenant_id,
        version,
        kind,
        "/".join(key),
        action,
        json.dumps(before) if before is not None else None,
        json.dumps(after) if after is not None else None,
        changed_by,
    )
    return Change(version, before, after)


def _row(kind: str, r: Any) -> dict[str, Any]:
    spec = KINDS[kind]
    out: dict[str, Any] = {c: r[c] for c in spec.value_columns}
    if kind == "status":
        out = {"carrier": r["carrier"], "code": r["code"], **out}
        out["descriptions"] = json.loads(r["descriptions"])
    out["updated_at"] = r["updated_at"].isoformat()
    return out


def _sql_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict) else value
