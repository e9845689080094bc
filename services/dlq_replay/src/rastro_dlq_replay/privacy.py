"""Data-subject requests for the dead-letter store (docs/privacy.md): the dead letters whose value names
the person (by blind index, ``personal_index``). Export shows them decrypted, unredacted — it is the
person's own data; erasure purges their payload (key, value, headers) as ``DELETE /v1/dead-letters/{id}``
does, keeping the metadata of the failure for the audit trail.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from rastro_dlq_replay.personal_index import NO_TENANT, VALUE_AAD
from rastro_kit.personal_data import EncryptedColumn, open_value
from rastro_kit.privacy_api import DataSubject, privacy_router

__all__ = ["COLUMNS", "erase", "export", "router"]

COLUMNS = (
    EncryptedColumn(
        "dead_letters", "value", key="id", tenant=f"coalesce(tenant, '{NO_TENANT}')", binary=True
    ),
)
_MATCH = "tenant = $1 AND personal_index && $2::text[]"


async def export(conn: Any, who: DataSubject) -> dict[str, Any]:
    rows = await conn.fetch(
        "SELECT id, service, reason, status, event_type, event_id, first_failed_at, value FROM dead_letters"
        f" WHERE {_MATCH} ORDER BY id",
        who.tenant_id,
        list(who.indexes),
    )
    items = []
    for r in rows:
        raw = await open_value(conn, who.tenant_id or NO_TENANT, VALUE_AAD, r["value"])
        items.append(
            {
                **{k: r[k] for k in ("id", "service", "reason", "status", "event_type", "event_id")},
                "first_failed_at": r["first_failed_at"].isoformat(),
                "value": _shown(raw),
            }
        )
    return {"dead_letters": items}


def _shown(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


async def erase(conn: Any, who: DataSubject) -> dict[str, int]:
    purged = await conn.fetchval(
        "WITH gone AS (UPDATE dead_letters SET status = 'purged', key = NULL, value = NULL, key_text = NULL,"
        " header_names = '{}', header_values = '{}', personal_index = '{}', updated_at = now(),"
        " purged_at = coalesce(purged_at, now()), purged_by = coalesce(purged_by, 'privacy-erasure')"
        f" WHERE {_MATCH} RETURNING 1) SELECT count(*) FROM gone",
        who.tenant_id,
        list(who.indexes),
    )
    return {"dead_letters": int(purged)}


router: APIRouter = privacy_router("dead-letters", "dlq-replay", export, erase, COLUMNS)
