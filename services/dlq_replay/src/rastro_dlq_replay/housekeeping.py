"""Retention of the dead-letter store, one of the kit housekeeper's rules (run hourly, after the inbox,
by one instance): a purge by an operator erases payloads but keeps the row, so without this the store
would only grow.

What goes, once older than the tenant's ``dead_letters`` retention (``RASTRO_DLQ_REPLAY_RETENTION_DAYS``,
30, beyond the 28 days a DLQ topic keeps its records, unless the tenant overrides it:
``rastro_kit.retention``; tenant-less dead letters count as the pseudo-tenant ``_none``):

- dead letters whatever their status (new, replayed, failed after replay, purged) whose row has not
  changed for that long — a replay or a new failure moves ``updated_at`` and restarts the clock — with
  their replays and replay-job items; except those an active (pending or running) job has still to
  replay;
- finished (completed or cancelled) replay jobs that ended the default retention ago and that no kept
  replay names, with their items (a job's filter may span tenants, so jobs keep the default).

The audit trail (``audit_log``) is append-only and kept: one row per operator action, it grows with
people, not with traffic. Indexes each statement uses: migration 0003 and docs/database.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rastro_dlq_replay.settings import DlqReplaySettings
from rastro_kit.housekeeping import BATCH, Purge, delete_in_batches
from rastro_kit.retention import add_counts, delete_per_tenant

__all__ = ["OLD_DEAD_LETTERS", "purge_store", "retention"]

OLD_DEAD_LETTERS = """
WITH doomed AS (
    SELECT id FROM dead_letters l
    WHERE updated_at < now() - $1::interval AND coalesce(tenant, '_none') {tenant}
      AND NOT EXISTS (
        SELECT 1 FROM replay_job_items i JOIN replay_jobs j ON j.id = i.job_id
        WHERE i.dead_letter_id = l.id AND j.status IN ('pending', 'running'))
    LIMIT $3 FOR UPDATE SKIP LOCKED
), items AS (
    DELETE FROM replay_job_items i USING doomed d WHERE i.dead_letter_id = d.id RETURNING 1
), replays AS (
    DELETE FROM replays r USING doomed d WHERE r.dead_letter_id = d.id RETURNING 1
), gone AS (
    DELETE FROM dead_letters l USING doomed d WHERE l.id = d.id RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS dead_letters, (SELECT count(*) FROM replays) AS replays,
       (SELECT count(*) FROM items) AS replay_job_items
"""
_FINISHED_JOBS = """
WITH doomed AS (
    SELECT id FROM replay_jobs j
    WHERE status IN ('completed', 'cancelled') AND coalesce(finished_at, updated_at) < now() - $1::interval
      AND NOT EXISTS (SELECT 1 FROM replays r WHERE r.job_id = j.id)
    LIMIT $2 FOR UPDATE SKIP LOCKED
), items AS (
    DELETE FROM replay_job_items i USING doomed d WHERE i.job_id = d.id RETURNING 1
), gone AS (
    DELETE FROM replay_jobs j USING doomed d WHERE j.id = d.id RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS replay_jobs, (SELECT count(*) FROM items) AS replay_job_items
"""


async def purge_store(
    pool: Any, older_than: timedelta, batch: int = BATCH, pause_s: float = 0.0
) -> dict[str, int]:
    """Delete what is older than ``older_than`` (see the module docstring); rows deleted per table."""
    days = older_than / timedelta(days=1)
    counts = await delete_per_tenant(
        pool, OLD_DEAD_LETTERS, "dead_letters", days, batch=batch, pause_s=pause_s
    )
    # A job can name thousands of items (most go with their dead letters first): few jobs a batch. Jobs
    # span tenants (an operator's filter), so they keep the default retention.
    jobs = await delete_in_batches(
        pool, _FINISHED_JOBS, older_than, batch=max(batch // 100, 1), pause_s=pause_s
    )
    return add_counts(counts, jobs)


def retention(settings: DlqReplaySettings) -> Purge:
    """The rule ``ServiceDefinition.retention`` takes."""
    older_than, pause_s = timedelta(days=settings.retention_days), settings.housekeeping_pause_ms / 1000

    async def purge(pool: Any) -> dict[str, int]:
        return await purge_store(pool, older_than, pause_s=pause_s)

    return purge
