"""Postgres access for subscriptions, and the queueing of new messages (schema ``notification``).
What the API shows of messages and attempts is in ``message_log``; the dispatcher's queue operations
are in ``delivery_queue``.

Every read and write of a subscription takes the tenant it acts for (``None``: an operator key, every
tenant), so a tenant never reaches another tenant's rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rastro_events import new_event_id

__all__ = [
    "Subscription",
    "delete_subscription",
    "enabled_subscriptions",
    "get_subscription",
    "insert_messages",
    "insert_subscription",
    "iso",
    "list_subscriptions",
    "new_id",
    "rotate_secret",
    "update_subscription",
    "wake_dispatcher",
]

_SUBSCRIPTION_COLUMNS = (
    "id, tenant_id, url, event_types, description, secret, enabled, disabled_reason, "
    "failing_since, created_at, updated_at, previous_secret_expires_at, headers, rate_limit_per_s, "
    "carriers, consecutive_failures, circuit_open_until, disabled_at, now() AS now"
)
_EDITABLE = frozenset(
    {"url", "event_types", "description", "enabled", "headers", "rate_limit_per_s", "carriers"}
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{new_event_id()}"


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class Subscription:
    id: str
    tenant_id: str
    url: str
    event_types: list[str]
    description: str | None
    secret: str
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None
    headers: dict[str, str]
    rate_limit_per_s: float | None
    carriers: list[str] | None
    consecutive_failures: int
    circuit_open_until: datetime | None
    disabled_at: datetime | None
    now: datetime

    @property
    def circuit(self) -> str:
        """``closed``; ``open`` (parked until ``circuit_open_until``); ``half_open`` (one probe at a time)."""
        if self.circuit_open_until is not None and self.circuit_open_until > self.now:
            return "open"
        return "half_open" if self.circuit_open_until is not None else "closed"

    def public(self, *, with_secret: bool) -> dict[str, Any]:
        rotating = self.previous_secret_expires_at is not None and self.previous_secret_expires_at > self.now
        shown: dict[str, Any] = {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "url": self.url,
            "event_types": self.event_types,
            "carriers": self.carriers,
            "description": self.description,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "disabled_at": iso(self.disabled_at),
            "failing_since": iso(self.failing_since),
            "headers": self.headers,
            "rate_limit_per_s": self.rate_limit_per_s,
            "circuit": self.circuit,
            "circuit_open_until": iso(self.circuit_open_until),
            "consecutive_failures": self.consecutive_failures,
            "previous_secret_expires_at": iso(self.previous_secret_expires_at) if rotating else None,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
        if with_secret:
            shown["secret"] = self.secret
        return shown


def _subscription(row: Mapping[str, Any]) -> Subscription:
    return Subscription(
        id=row["id"],
        tenant_id=row["tenant_id"],
        url=row["url"],
        event_types=list(row["event_types"]),
        description=row["description"],
        secret=row["secret"],
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        failing_since=row["failing_since"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        headers=_json_object(row["headers"]),
        rate_limit_per_s=row["rate_limit_per_s"],
        carriers=None if row["carriers"] is None else list(row["carriers"]),
        consecutive_failures=row["consecutive_failures"],
        circuit_open_until=row["circuit_open_until"],
        disabled_at=row["disabled_at"],
        now=row["now"],
    )


def _json_object(value: Any) -> dict[str, str]:
    return dict(json.loads(value)) if isinstance(value, str) else dict(value or {})


async def insert_subscription(
    conn: Any,
    *,
    tenant_id: str,
    url: str,
    event_types: Sequence[str],
    description: str | None,
    secret: str,
    enabled: bool,
    headers: Mapping[str, str] | None = None,
    rate_limit_per_s: float | None = None,
    carriers: Sequence[str] | None = None,
) -> Subscription:
    row = await conn.fetchrow(
        "INSERT INTO subscriptions (id, tenant_id, url, event_types, description, secret, enabled, headers,"
        " rate_limit_per_s, carriers, disabled_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, CASE WHEN $7 THEN NULL ELSE now() END)"
        f" RETURNING {_SUBSCRIPTION_COLUMNS}",
        new_id("sub"),
        tenant_id,
        url,
        list(event_types),
        description,
        secret,
        enabled,
        json.dumps(dict(headers or {})),
        rate_limit_per_s,
        None if carriers is None else list(carriers),
    )
    return _subscription(row)


async def get_subscription(conn: Any, sub_id: str, tenant_id: str | None) -> Subscription | None:
    row = await conn.fetchrow(
        f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions"
        " WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)",
        sub_id,
        tenant_id,
    )
    return _subscription(row) if row else None


async def list_subscriptions(
    conn: Any, tenant_id: str | None, after: str | None, limit: int
) -> list[Subscription]:
    rows = await conn.fetch(
        f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE ($1::text IS NULL OR tenant_id = $1)"
        " AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",
        tenant_id,
        after,
        limit,
    )
    return [_subscription(r) for r in rows]


async def update_subscription(
    conn: Any, sub_id: str, tenant_id: str | None, changes: Mapping[str, Any]
) -> Subscription | None:
    """Apply ``changes`` (see ``_EDITABLE``). Enabling clears the disabled state and the circuit
    breaker, and wakes the dispatcher for the messages that waited; disabling stamps ``disabled_at``."""
    unknown = set(changes) - _EDITABLE
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    names = sorted(changes)
    sets = [
        f"{name} = ${i}" + ("::jsonb" if name == "headers" else "") for i, name in enumerate(names, start=3)
    ]
    if changes.get("enabled") is True:
        sets += [
            "disabled_reason = NULL",
            "failing_since = NULL",
            "disabled_at = NULL",
            "consecutive_failures = 0",
            "circuit_open_until = NULL",
        ]
    elif changes.get("enabled") is False:
        sets += ["disabled_at = coalesce(disabled_at, now())"]
    row = await conn.fetchrow(
        f"UPDATE subscriptions SET {', '.join([*sets, 'updated_at = now()'])}"
        f" WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2) RETURNING {_SUBSCRIPTION_COLUMNS}",
        sub_id,
        tenant_id,
        *(_column_value(n, changes[n]) for n in names),
    )
    if row is not None and changes.get("enabled") is True:
        await wake_dispatcher(conn)
    return _subscription(row) if row else None


def _column_value(name: str, value: Any) -> Any:
    if name == "headers":
        return json.dumps(dict(value))
    if name in ("event_types", "carriers") and value is not None:
        return list(value)
    return value


async def rotate_secret(
    conn: Any, sub_id: str, tenant_id: str | None, new_secret: str, overlap_s: float
) -> Subscription | None:
    """Make ``new_secret`` the signing secret; the current one keeps signing for ``overlap_s`` too (both
    signatures go out), so receivers can switch at their pace. A rotation during an overlap ends the
    older overlap: at most two secrets sign at once."""
    row = await conn.fetchrow(
        "UPDATE subscriptions SET previous_secret = secret, secret = $3,"
        " previous_secret_expires_at = now() + make_interval(secs => $4), updated_at = now()"
        f" WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2) RETURNING {_SUBSCRIPTION_COLUMNS}",
        sub_id,
        tenant_id,
        new_secret,
        overlap_s,
    )
    return _subscription(row) if row else None


async def delete_subscription(conn: Any, sub_id: str, tenant_id: str | None) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2) RETURNING 1",
        sub_id,
        tenant_id,
    )
    return deleted is not None


async def enabled_subscriptions(conn: Any, tenant_id: str) -> list[tuple[str, list[str], list[str] | None]]:
    """``(id, event_types, carriers)`` of the tenant's enabled subscriptions."""
    rows = await conn.fetch(
        "SELECT id, event_types, carriers FROM subscriptions WHERE tenant_id = $1 AND enabled ORDER BY id",
        tenant_id,
    )
    return [
        (r["id"], list(r["event_types"]), None if r["carriers"] is None else list(r["carriers"]))
        for r in rows
    ]


async def insert_messages(
    conn: Any,
    subscription_ids: Sequence[str],
    *,
    tenant_id: str,
    event_id: str,
    event_type: str,
    ordering_key: str,
    body: bytes,
) -> int:
    """One message per subscription for one event; an event seen before adds nothing. Wakes the
    dispatcher (the NOTIFY is delivered when the caller's transaction commits)."""
    if not subscription_ids:
        return 0
    inserted = await conn.fetch(
        "INSERT INTO messages (id, subscription_id, tenant_id, event_id, event_type, ordering_key, body)"
        " SELECT m.id, m.sub, $3, $4, $5, $6, $7"
        " FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS m(id, sub, n)"
        " ORDER BY m.n ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING id",
        [new_id("msg") for _ in subscription_ids],
        list(subscription_ids),
        tenant_id,
        event_id,
        event_type,
        ordering_key,
        body.decode("utf-8"),
    )
    if inserted:
        await wake_dispatcher(conn)
    return len(inserted)


async def wake_dispatcher(conn: Any) -> None:
    await conn.execute("SELECT pg_notify(current_schema() || '_messages', '')")
