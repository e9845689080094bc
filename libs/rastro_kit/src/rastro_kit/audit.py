"""The audit log (docs/audit.md): who did what, when and from where, written in the same transaction as
the change it records, into the calling service's own ``audit_events`` table (kit migration 0003).

A route calls ``await record(conn, principal, request, "key.revoke", target=key_id, details=…)`` on the
connection of its transaction; if the change rolls back, so does its audit row. The auth dependency
binds the caller and the request of the running request (``bind``), so code below a route (an adapter
that already audits in its own terms, like dlq-replay's replay trail) can call ``record`` with
``None, None`` and still name who and from where.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from rastro_kit.auth import Principal

__all__ = [
    "MIN_AUDIT_RETENTION_DAYS",
    "SYSTEM",
    "AuditEntry",
    "AuditOrigin",
    "bind",
    "fetch",
    "origin_of",
    "purge_expired",
    "record",
    "record_data_subject_request",
    "redact",
]

MIN_AUDIT_RETENTION_DAYS = 30  # the trigger of migration 0003 refuses younger purges
SYSTEM = "system"  # the actor of background work (a replay job finishing, a retention purge)
_ACTION = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$")
_SECRET = re.compile(r"secret|password|token|credential|api_key|^key$|authorization", re.IGNORECASE)
_MAX_TEXT = 500


class HasHeaders(Protocol):
    """What ``record`` reads of a request (a Starlette ``Request`` fits)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def client(self) -> Any: ...


@dataclass(frozen=True)
class AuditOrigin:
    """From where: the connection's peer, what proxies said, the client, and the request's ids."""

    client_ip: str | None = None
    forwarded_for: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    trace_id: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    tenant_id: str | None
    actor_key_id: str
    actor_role: str | None
    actor_tenant: str | None
    action: str
    target: str | None
    details: dict[str, Any]
    origin: AuditOrigin

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "tenant_id": self.tenant_id,
            "actor": {"key_id": self.actor_key_id, "role": self.actor_role, "tenant_id": self.actor_tenant},
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "origin": self.origin.__dict__,
        }


_bound: ContextVar[tuple[Principal, AuditOrigin] | None] = ContextVar("rastro_audit_bound", default=None)


def _cut(value: str | None) -> str | None:
    return value[:_MAX_TEXT] if value else None


def origin_of(request: HasHeaders) -> AuditOrigin:
    headers = request.headers
    traceparent = headers.get("traceparent") or ""
    parts = traceparent.split("-")
    client = getattr(request, "client", None)
    return AuditOrigin(
        client_ip=_cut(getattr(client, "host", None)),
        forwarded_for=_cut(headers.get("x-forwarded-for")),
        user_agent=_cut(headers.get("user-agent")),
        request_id=_cut(headers.get("x-request-id")),
        trace_id=parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None,
    )


def bind(principal: Principal, request: HasHeaders) -> None:
    """Remember the caller of the running request (called by the auth dependency)."""
    _bound.set((principal, origin_of(request)))


def redact(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details without secrets: any key that names one has its value replaced, at any depth."""
    out: dict[str, Any] = {}
    for name, value in details.items():
        if _SECRET.search(name):
            out[name] = "[redacted]"
        elif isinstance(value, Mapping):
            out[name] = redact(value)
        else:
            out[name] = value
    return out


async def record(
    conn: Any,
    principal: Principal | None,
    request: HasHeaders | None,
    action: str,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
    *,
    tenant_id: str | None = None,
    actor_key_id: str | None = None,
) -> int:
    """Append one entry on ``conn`` (inside the caller's transaction); returns its id.

    ``principal``/``request`` default to the ones bound for the running request; ``tenant_id`` (the
    tenant acted on) defaults to the principal's own; ``actor_key_id`` names the actor when there is no
    principal (background work: ``SYSTEM`` or the key that started it)."""
    if not _ACTION.match(action):
        raise ValueError(f"audit action {action!r} is not <area>.<verb>")
    bound = _bound.get()
    if principal is None and bound is not None and actor_key_id in (None, bound[0].key_id):
        principal = bound[0]
    origin = origin_of(request) if request is not None else (bound[1] if bound and principal else None)
    origin = origin or AuditOrigin()
    actor = principal.key_id if principal is not None else (actor_key_id or SYSTEM)
    tenant = tenant_id if tenant_id is not None else (principal.tenant_id if principal else None)
    return int(
        await conn.fetchval(
            "INSERT INTO audit_events (tenant_id, actor_key_id, actor_role, actor_tenant, action, target,"
            " details, client_ip, forwarded_for, user_agent, request_id, trace_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12) RETURNING id",
            tenant,
            actor,
            _role_of(principal),
            principal.tenant_id if principal else None,
            action,
            _cut(target),
            json.dumps(redact(details or {}), default=str),
            origin.client_ip,
            origin.forwarded_for,
            origin.user_agent,
            origin.request_id,
            origin.trace_id,
        )
    )


def _role_of(principal: Principal | None) -> str | None:
    if principal is None:
        return None
    return "operator-key" if principal.is_operator else principal.role


async def record_data_subject_request(
    conn: Any,
    principal: Principal | None,
    request: HasHeaders | None,
    kind: str,
    subject_ref: str,
    *,
    tenant_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> int:
    """An LGPD data-subject request (``kind``: access, erasure, correction, …). ``subject_ref`` must be a
    pseudonymous reference (a request id or a hash), never the person's e-mail or document number."""
    return await record(
        conn, principal, request, f"data_subject.{kind}", subject_ref, details, tenant_id=tenant_id
    )


async def fetch(
    conn: Any,
    tenant_id: str | None,
    *,
    action: str | None = None,
    since: datetime | None = None,
    actor: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Newest first. ``tenant_id`` None: every entry (operators); ``action`` matches exactly or, ending
    in ``.*``, by prefix (``key.*``); ``before`` is the cursor (an id)."""
    prefix = action[:-1] if action and action.endswith(".*") else None
    rows = await conn.fetch(
        "SELECT * FROM audit_events WHERE ($1::text IS NULL OR tenant_id = $1)"
        " AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR starts_with(action, $3))"
        " AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::text IS NULL OR actor_key_id = $5)"
        " AND ($6::bigint IS NULL OR id < $6) ORDER BY id DESC LIMIT $7",
        tenant_id,
        None if prefix else action,
        prefix,
        since,
        actor,
        before,
        limit,
    )
    return [_entry(r) for r in rows]


def _entry(r: Any) -> AuditEntry:
    origin = AuditOrigin(r["client_ip"], r["forwarded_for"], r["user_agent"], r["request_id"], r["trace_id"])
    return AuditEntry(
        id=int(r["id"]),
        at=r["at"],
        tenant_id=r["tenant_id"],
        actor_key_id=r["actor_key_id"],
        actor_role=r["actor_role"],
        actor_tenant=r["actor_tenant"],
        action=r["action"],
        target=r["target"],
        details=json.loads(r["details"]) if isinstance(r["details"], str) else dict(r["details"]),
        origin=origin,
    )


async def purge_expired(pool: Any, retention: timedelta) -> dict[str, int]:
    """The one way rows leave: older than ``retention``, through the trigger's purge path."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('rastro.audit_purge_before', (now() - $1::interval)::text, true)", retention
        )
        status = await conn.execute("DELETE FROM audit_events WHERE at < now() - $1::interval", retention)
    return {"audit_events": int(status.split()[-1])}
