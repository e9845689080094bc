"""The notice queue in Postgres: customer messages and owner alerts waiting to go out on a channel.

A notice is queued once per ``(tenant, channel, dedupe_key)`` — the unique constraint is what makes
"never two messages for the same milestone of a shipment" hold, whatever the events do. The notice
dispatcher claims due notices with a lease (``FOR UPDATE SKIP LOCKED``), as the webhook queue does,
and records what happened: ``sent``, a retry later, ``failed``, ``suppressed`` (opted out, channel not
configured), or deferred (quiet hours: not an attempt, just a later ``send_after``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from rastro_events.personal import scrub_text
from rastro_kit.personal_data import blind_index, open_text, seal_value
from rastro_notification.adapters.repository import iso, new_id
from rastro_notification.domain.quiet_hours import QuietHours
from rastro_notification.domain.recipients import mask_address

__all__ = [
    "NoticeClaim",
    "claim_notices",
    "defer_notice",
    "finish_notice",
    "list_notices",
    "queue_notice",
    "wake_notice_dispatcher",
]

_CLAIM = """
WITH picked AS (
    SELECT id FROM notices WHERE status = 'pending' AND send_after <= now()
    ORDER BY send_after LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE notices n
SET leased_until = now() + make_interval(secs => $2), send_after = now() + make_interval(secs => $2)
FROM picked
WHERE n.id = picked.id
RETURNING n.id, n.tenant_id, n.kind, n.tracking_number, n.milestone, n.channel, n.address, n.locale,
          n.context, n.attempts
"""

_SETTINGS = """
SELECT tenant_id, time_zone, quiet_start, quiet_end, tracking_url, messaging_url, messaging_secret
FROM notice_settings WHERE tenant_id = ANY($1::text[])
"""


@dataclass(frozen=True)
class NoticeClaim:
    id: str
    tenant_id: str
    kind: str  # customer | owner
    tracking_number: str | None
    milestone: str
    channel: str  # email | messaging
    address: str
    locale: str
    context: dict[str, Any]
    attempt_number: int
    quiet: QuietHours | None
    time_zone: str
    tracking_url: str | None
    messaging_url: str | None
    messaging_secret: str | None


async def queue_notice(
    conn: Any,
    *,
    tenant_id: str,
    kind: str,
    tracking_number: str | None,
    milestone: str,
    dedupe_key: str,
    channel: str,
    address: str,
    locale: str,
    context: Mapping[str, Any],
) -> bool:
    """Queue one notice; False when one with the same dedupe key exists already (nothing changes).
    The address and the recipient's name in the context are sealed (docs/privacy.md)."""
    context = dict(context)
    if context.get("recipient_name"):
        context["recipient_name"] = await seal_value(
            conn, tenant_id, "notices.recipient_name", context["recipient_name"]
        )
    kind_of_address = "email" if channel == "email" else "phone"
    inserted = await conn.fetchval(
        "INSERT INTO notices (id, tenant_id, kind, tracking_number, milestone, dedupe_key, channel, address,"
        " locale, context, address_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11)"
        " ON CONFLICT (tenant_id, channel, dedupe_key) DO NOTHING RETURNING 1",
        new_id("ntc"),
        tenant_id,
        kind,
        tracking_number,
        milestone,
        dedupe_key,
        channel,
        await seal_value(conn, tenant_id, "notices.address", address),
        locale,
        json.dumps(context, ensure_ascii=False, default=str),
        await blind_index(conn, tenant_id, kind_of_address, address),
    )
    if inserted:
        await wake_notice_dispatcher(conn)
    return inserted is not None


async def wake_notice_dispatcher(conn: Any) -> None:
    await conn.execute("SELECT pg_notify(current_schema() || '_notices', '')")


async def claim_notices(pool: Any, *, limit: int, lease_s: float) -> list[NoticeClaim]:
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(_CLAIM, limit, lease_s)
        tenants = sorted({r["tenant_id"] for r in rows})
        settings = {s["tenant_id"]: s for s in await conn.fetch(_SETTINGS, tenants)} if rows else {}
        opened = [await _opened(conn, r) for r in rows]
        # A shredded tenant's notice has nobody left to send to: it fails now instead of every lease.
        shredded = [r["id"] for r in opened if r["address"] is None]
        if shredded:
            await conn.execute(
                "UPDATE notices SET status = 'failed', leased_until = NULL,"
                " last_error = 'recipient data shredded' WHERE id = ANY($1::text[])",
                shredded,
            )
    return [_claim(r, settings.get(r["tenant_id"])) for r in opened if r["address"] is not None]


async def _opened(conn: Any, row: Mapping[str, Any]) -> dict[str, Any]:
    """A claimed row with its address and recipient name decrypted, to be sent (address None: the
    tenant was crypto-shredded)."""
    tenant = row["tenant_id"]
    context = dict(json.loads(row["context"]))
    if context.get("recipient_name"):
        context["recipient_name"] = await open_text(
            conn, tenant, "notices.recipient_name", context["recipient_name"], shredded_as_none=True
        )
    address = await open_text(conn, tenant, "notices.address", row["address"], shredded_as_none=True)
    return {**dict(row), "address": address, "context": json.dumps(context)}


def _claim(row: Mapping[str, Any], settings: Mapping[str, Any] | None) -> NoticeClaim:
    def setting(name: str) -> Any:
        return None if settings is None else settings[name]

    start: time | None = setting("quiet_start")
    end: time | None = setting("quiet_end")
    time_zone = setting("time_zone") or "America/Sao_Paulo"
    quiet = QuietHours(start, end, time_zone) if start is not None and end is not None else None
    return NoticeClaim(
        id=row["id"],
        tenant_id=row["tenant_id"],
        kind=row["kind"],
        tracking_number=row["tracking_number"],
        milestone=row["milestone"],
        channel=row["channel"],
        address=row["address"],
        locale=row["locale"],
        context=dict(json.loads(row["context"])),
        attempt_number=row["attempts"] + 1,
        quiet=quiet,
        time_zone=time_zone,
        tracking_url=setting("tracking_url"),
        messaging_url=setting("messaging_url"),
        messaging_secret=setting("messaging_secret"),
    )


async def finish_notice(
    pool: Any, notice_id: str, status: str, *, error: str | None = None, retry_in_s: float | None = None
) -> None:
    """Record an attempt: ``sent``, ``failed``, ``suppressed``, or ``pending`` again in ``retry_in_s``."""
    await pool.execute(
        "UPDATE notices SET status = $2, attempts = attempts + CASE WHEN $2 = 'suppressed' THEN 0 ELSE 1 END,"
        " last_error = $3, leased_until = NULL,"
        " send_after = CASE WHEN $4::float8 IS NULL THEN now() ELSE now() + make_interval(secs => $4) END,"
        " sent_at = CASE WHEN $2 = 'sent' THEN now() END WHERE id = $1",
        notice_id,
        status,
        None if error is None else scrub_text(error),  # a channel's error may quote the address
        retry_in_s,
    )


async def defer_notice(pool: Any, notice_id: str, until: datetime, reason: str) -> None:
    """Not now (quiet hours): due again at ``until``, no attempt counted."""
    await pool.execute(
        "UPDATE notices SET send_after = $2, deferred_reason = $3, leased_until = NULL WHERE id = $1",
        notice_id,
        until,
        reason,
    )


async def list_notices(
    conn: Any, tenant_id: str | None, tracking_number: str | None, before: str | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first, the address masked: the log shows what was sent, not who to."""
    rows = await conn.fetch(
        "SELECT id, tenant_id, kind, tracking_number, milestone, channel, address, locale, status, attempts,"
        " send_after, last_error, deferred_reason, sent_at, created_at FROM notices"
        " WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR tracking_number = $2)"
        " AND ($3::text IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        tenant_id,
        tracking_number,
        before,
        limit,
    )
    return [
        {
            **{k: r[k] for k in ("id", "tenant_id", "kind", "tracking_number", "milestone", "channel")},
            **{k: r[k] for k in ("locale", "status", "attempts", "last_error", "deferred_reason")},
            "address": mask_address(
                await open_text(conn, r["tenant_id"], "notices.address", r["address"], shredded_as_none=True)
                or ""
            ),
            "send_after": iso(r["send_after"]) if r["status"] == "pending" else None,
            "sent_at": iso(r["sent_at"]),
            "created_at": iso(r["created_at"]),
        }
        for r in rows
    ]
