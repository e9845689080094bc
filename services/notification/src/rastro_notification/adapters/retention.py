"""The retention purge and the queue gauges, as SQL.

Purged, in batches so no statement holds locks for long:

- messages that are finished (``delivered`` or ``failed``) and whose creation and last attempt are both
  older than ``log_retention_days`` — their attempts go with them; attempts older than that of messages
  still kept (a message waiting on a disabled endpoint) go too. Pending messages are never purged;
- notices that are finished (``sent``, ``failed``, ``suppressed``) and older than the same period;
- recipients (personal data) not updated for ``recipient_retention_days``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["purge", "queue_stats"]

BATCH = 5000
_STATEMENTS = {
    "messages": "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE status <> 'pending'"
    " AND created_at < $1 AND coalesce(last_attempt_at, created_at) < $1 LIMIT $2)",
    "attempts": "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE attempted_at < $1 LIMIT $2)",
    "notices": "DELETE FROM notices WHERE id IN (SELECT id FROM notices WHERE status <> 'pending'"
    " AND created_at < $1 LIMIT $2)",
}
_RECIPIENTS = (
    "DELETE FROM recipients WHERE (tenant_id, tracking_number) IN (SELECT tenant_id, tracking_number"
    " FROM recipients WHERE updated_at < $1 LIMIT $2)"
)


async def purge(
    pool: Any, *, log_retention_days: float, recipient_retention_days: float, now: datetime | None = None
) -> dict[str, int]:
    """Rows deleted per table."""
    now = now or datetime.now(UTC)
    log_cutoff = now - timedelta(days=log_retention_days)
    work = [(table, sql, log_cutoff) for table, sql in _STATEMENTS.items()]
    work.append(("recipients", _RECIPIENTS, now - timedelta(days=recipient_retention_days)))
    counts: dict[str, int] = {}
    for table, sql, cutoff in work:
        total = 0
        while True:
            status = await pool.execute(sql, cutoff, BATCH)
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < BATCH:
                break
        counts[table] = total
    return counts


async def queue_stats(pool: Any) -> dict[str, float]:
    row = await pool.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM messages WHERE status = 'pending') AS queue_depth,
          (SELECT coalesce(EXTRACT(EPOCH FROM now() - min(m.next_attempt_at)), 0)::float8
             FROM messages m JOIN subscriptions s ON s.id = m.subscription_id
            WHERE m.status = 'pending' AND m.next_attempt_at <= now() AND s.enabled
              AND (s.circuit_open_until IS NULL OR s.circuit_open_until <= now())) AS oldest_due_s,
          (SELECT count(*) FROM subscriptions WHERE NOT enabled) AS disabled,
          (SELECT count(*) FROM subscriptions WHERE enabled AND circuit_open_until > now()) AS circuits_open,
          (SELECT count(*) FROM notices WHERE status = 'pending') AS notices_pending
        """
    )
    return {k: float(v) for k, v in dict(row).items()}
