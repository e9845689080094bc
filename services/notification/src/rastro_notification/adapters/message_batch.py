"""Set-based reads and writes of the batch fan-out (``rastro_notification.batch_fan_out``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

__all__ = ["MessageRow", "Subscription", "enabled_subscriptions_of", "insert_message_rows"]


class Subscription(NamedTuple):
    id: str
    event_types: list[str]
    carriers: list[str] | None


class MessageRow(NamedTuple):
    id: str
    subscription_id: str
    tenant_id: str
    event_id: str
    event_type: str
    ordering_key: str
    body: str


async def enabled_subscriptions_of(conn: Any, tenants: Collection[str]) -> dict[str, list[Subscription]]:
    """Every enabled subscription of ``tenants``, per tenant, in id order (as ``enabled_subscriptions``)."""
    rows = await conn.fetch(
        "SELECT tenant_id, id, event_types, carriers FROM subscriptions"
        " WHERE tenant_id = ANY($1::text[]) AND enabled ORDER BY tenant_id, id",
        list(tenants),
    )
    found: dict[str, list[Subscription]] = {}
    for r in rows:
        carriers = None if r["carriers"] is None else list(r["carriers"])
        found.setdefault(r["tenant_id"], []).append(Subscription(r["id"], list(r["event_types"]), carriers))
    return found


async def insert_message_rows(conn: Any, rows: Sequence[MessageRow]) -> int:
    """All of a batch's messages in one statement, in order (a shipment's messages keep their order); an
    event seen before adds nothing. One NOTIFY wakes the dispatcher when the transaction commits."""
    if not rows:
        return 0
    inserted = await conn.fetch(
        "INSERT INTO messages (id, subscription_id, tenant_id, event_id, event_type, ordering_key, body)"
        " SELECT m.id, m.sub, m.tenant, m.event, m.kind, m.okey, m.body"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])"
        " WITH ORDINALITY AS m(id, sub, tenant, event, kind, okey, body, n)"
        " ORDER BY m.n ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING id",
        *([row[i] for row in rows] for i in range(7)),
    )
    if inserted:
        await conn.execute("SELECT pg_notify(current_schema() || '_messages', '')")
    return len(inserted)
