"""The retention purge and the queue gauges, as SQL.

Purged, in batches so no statement holds locks for long:

- messages that are finished (``delivered`` or ``failed``) and whose creation and last attempt are both
  older than ``log_retention_days`` — their attempts go with them; attempts older than that of messages
  still kept (a message waiting on a disabled endpoint) go too. Pending messages are never purged;
- notices that are finished (``sent``, ``failed``, ``suppressed``) and older than the same period;
- recipients (personal data) not updated for ``recipient_retention_days``.

Both periods are defaults: a tenant's override of ``delivery_log`` or ``recipients``
(``rastro_kit.retention``) wins for its rows, one pass per override.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rastro_kit.retention import Cutoff, tenant_cutoffs

__all__ = ["purge", "queue_stats"]

BATCH = 5000
# $1 the cut-off time, $2 the tenant (or the tenants excluded: rastro_kit.retention), $3 the batch.
_LOG = {
    "messages": "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE status <> 'pending'"
    " AND created_at < $1 AND coalesce(last_attempt_at, created_at) < $1 AND tenant_id {tenant} LIMIT $3)",
    "attempts": "DELETE FROM attempts WHERE id IN (SELECT a.id FROM attempts a"
    " JOIN messages m ON m.id = a.message_id WHERE a.attempted_at < $1 AND m.tenant_id {tenant} LIMIT $3)",
    "notices": "DELETE FROM notices WHERE id IN (SELECT id FROM notices WHERE status <> 'pending'"
    " AND created_at < $1 AND tenant_id {tenant} LIMIT $3)",
}
_RECIPIENTS = {
    "recipients": "DELETE FROM recipients WHERE (tenant_id, tracking_number) IN (SELECT tenant_id,"
    " tracking_number FROM recipients WHERE updated_at < $1 AND tenant_id {tenant} LIMIT $3)"
}


async def purge(
    pool: Any, *, log_retention_days: float, recipient_retention_days: float, now: datetime | None = None
) -> dict[str, int]:
    """Rows deleted per table; the days are the defaults, a tenant's override (``delivery_log``,
    ``recipients``) wins for its rows."""
    now = now or datetime.now(UTC)
    counts: dict[str, int] = {}
    for category, default, statements in (
        ("delivery_log", log_retention_days, _LOG),
        ("recipients", recipient_retention_days, _RECIPIENTS),
    ):
        for cut in await tenant_cutoffs(pool, category, default):
            for table, sql in statements.items():
                counts[table] = counts.get(table, 0) + await _in_batches(pool, cut.scope(sql), cut, now)
    return counts


async def _in_batches(pool: Any, sql: str, cut: Cutoff, now: datetime) -> int:
    total = 0
    while True:
        status = await pool.execute(sql, cut.before(now), cut.arg, BATCH)
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < BATCH:
            return total


async def queue_stats(pool: Any) -> dict[str, float]:
    row = await pool.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM messages WHERE status = 'pending') AS queue_depth,
          (SELECT coalesce(EXTRACT(EPOCH FROM now() - min(d.at)), 0)::float8
             FROM subscriptions s CROSS JOIN LATERAL (
                  SELECT m.next_attempt_at AS at FROM messages m
                  WHERE m.status = 'pending' AND m.subscription_id = s.id AND m.next_attempt_at <= now()
                  ORDER BY m.next_attempt_at LIMIT 1) d
            WHERE s.enabled AND (s.circuit_open_until IS NULL OR s.circuit_open_until <= now())
          ) AS oldest_due_s,
          (SELECT count(*) FROM subscriptions WHERE NOT enabled) AS disabled,
          (SELECT count(*) FROM subscriptions WHERE enabled AND circuit_open_until > now()) AS circuits_open,
          (SELECT count(*) FROM notices WHERE status = 'pending') AS notices_pending
        """
    )
    return {k: float(v) for k, v in dict(row).items()}
