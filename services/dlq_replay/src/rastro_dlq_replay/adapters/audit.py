"""The audit trail in Postgres: rows are only ever inserted (a trigger refuses updates and deletes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rastro_dlq_replay.domain.jobs import AuditAction, AuditEntry, ReplayJob, filter_to_json
from rastro_kit import audit as kit_audit

__all__ = ["append_audit", "fetch_audit"]


async def append_audit(
    conn: Any,
    *,
    actor: str,
    action: AuditAction,
    reason: str | None,
    tenant: str | None,
    filter_: dict[str, Any] | None = None,
    counts: dict[str, int] | None = None,
    job_id: str | None = None,
    dead_letter_ids: Sequence[str] = (),
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, reason, tenant, filter, counts, job_id, dead_letter_ids)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8)",
        actor,
        str(action),
        reason,
        tenant,
        json.dumps(filter_) if filter_ is not None else None,
        json.dumps(counts or {}),
        job_id,
        list(dead_letter_ids),
    )
    # The same entry in the general audit log (docs/audit.md), with who and from where when a request
    # is running; this table stays the detailed replay trail behind GET /v1/dead-letters/audit.
    target = job_id or (dead_letter_ids[0] if len(dead_letter_ids) == 1 else None)
    summary: dict[str, Any] = {"reason": reason, "counts": counts or {}, "filter": filter_}
    summary["dead_letters"] = len(dead_letter_ids)
    await kit_audit.record(
        conn, None, None, f"dead_letters.{action}", target, summary, tenant_id=tenant, actor_key_id=actor
    )


async def append_job_audit(conn: Any, job: ReplayJob, action: AuditAction, *, actor: str) -> None:
    """An audit entry about a replay job as it stands: its reason, tenant, filter and counts."""
    await append_audit(
        conn,
        actor=actor,
        action=action,
        reason=job.reason,
        tenant=job.tenant,
        filter_=filter_to_json(job.filter),
        counts={"total": job.total, "replayed": job.replayed, "skipped": job.skipped},
        job_id=job.id,
    )


async def fetch_audit(
    conn: Any,
    tenant: str | None,
    *,
    action: str | None,
    job_id: str | None,
    before: int | None,
    limit: int,
) -> list[AuditEntry]:
    """Newest first; ``tenant`` None is every entry (operators), else that tenant's scope only."""
    rows = await conn.fetch(
        "SELECT id, at, actor, action, reason, tenant, filter, counts, job_id, dead_letter_ids FROM audit_log"
        " WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR action = $2)"
        " AND ($3::text IS NULL OR job_id = $3) AND ($4::bigint IS NULL OR id < $4)"
        " ORDER BY id DESC LIMIT $5",
        tenant,
        action,
        job_id,
        before,
        limit,
    )
    return [
        AuditEntry(
            id=int(r["id"]),
            at=r["at"],
            actor=r["actor"],
            action=AuditAction(r["action"]),
            reason=r["reason"],
            tenant=r["tenant"],
            filter=json.loads(r["filter"]) if r["filter"] is not None else None,
            counts=json.loads(r["counts"]),
            job_id=r["job_id"],
            dead_letter_ids=tuple(r["dead_letter_ids"]),
        )
        for r in rows
    ]
