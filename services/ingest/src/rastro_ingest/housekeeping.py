"""Retention of ingest's tables, one of the kit housekeeper's rules (run hourly, after the inbox, by one
instance), per tenant (``rastro_kit.retention``: a tenant's override wins, one pass per override).

What goes, by category (defaults in brackets):

- ``idempotency_keys`` [``RASTRO_INGEST_IDEMPOTENCY_TTL_HOURS``, 24 h]: stored answers of
  ``Idempotency-Key`` requests older than that; a retry after it is handled as a new request;
- ``imports`` [``RASTRO_INGEST_IMPORT_RETENTION_DAYS``, 90]: finished (completed or failed) CSV import
  jobs that ended that long ago, with their row errors; and the re-upload keys stored that long ago (a
  file uploaded again after that is imported again — downstream inboxes drop events they saw recently);
- ``shipments`` [``RASTRO_INGEST_SHIPMENT_RETENTION_DAYS``, 365]: polled shipments no longer polled
  (delivered, stopped, expired) whose last carrier news and last poll are that old; and the order
  references EDI files are matched by (``shipment_refs``) whose order had no event accepted that long.

Every statement locks ``FOR UPDATE SKIP LOCKED`` (never waits for a request or the poller) and deletes in
batches. Indexes: migrations 0001 and 0008.
"""

from __future__ import annotations

from typing import Any

from rastro_ingest.settings import IngestSettings
from rastro_kit.housekeeping import BATCH, Purge
from rastro_kit.retention import add_counts, delete_per_tenant

__all__ = ["RULES", "defaults", "purge_tables", "retention"]

_IDEMPOTENCY_KEYS = """
WITH gone AS (
    DELETE FROM idempotency_keys WHERE (tenant_id, key) IN (
        SELECT tenant_id, key FROM idempotency_keys
        WHERE created_at < now() - $1::interval AND tenant_id {tenant}
        LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING 1
)
SELECT count(*) AS idempotency_keys FROM gone
"""
_IMPORT_JOBS = """
WITH doomed AS (
    SELECT id FROM import_jobs
    WHERE status <> 'processing' AND coalesce(finished_at, updated_at) < now() - $1::interval
      AND tenant_id {tenant}
    LIMIT $3 FOR UPDATE SKIP LOCKED
), errors AS (
    DELETE FROM import_errors e USING doomed d WHERE e.job_id = d.id RETURNING 1
), gone AS (
    DELETE FROM import_jobs j USING doomed d WHERE j.id = d.id RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS import_jobs, (SELECT count(*) FROM errors) AS import_errors
"""
_IMPORT_EVENT_KEYS = """
WITH gone AS (
    DELETE FROM import_event_keys WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM import_event_keys
        WHERE created_at < now() - $1::interval AND tenant_id {tenant} LIMIT $3))
    RETURNING 1
)
SELECT count(*) AS import_event_keys FROM gone
"""
_TRACKED_SHIPMENTS = """
WITH gone AS (
    DELETE FROM tracked_shipments WHERE (connection_id, tracking_number) IN (
        SELECT connection_id, tracking_number FROM tracked_shipments
        WHERE next_poll_at IS NULL AND last_news_at < now() - $1::interval
          AND coalesce(last_polled_at, last_news_at) < now() - $1::interval AND tenant_id {tenant}
        LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING 1
)
SELECT count(*) AS tracked_shipments FROM gone
"""
_SHIPMENT_REFS = """
WITH gone AS (
    DELETE FROM shipment_refs WHERE (tenant_id, order_id) IN (
        SELECT tenant_id, order_id FROM shipment_refs
        WHERE updated_at < now() - $1::interval AND tenant_id {tenant}
        LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING 1
)
SELECT count(*) AS shipment_refs FROM gone
"""
# (category, statement, rows a batch: a job takes its errors along, up to thousands, so few jobs a batch)
RULES: tuple[tuple[str, str, int], ...] = (
    ("idempotency_keys", _IDEMPOTENCY_KEYS, BATCH),
    ("imports", _IMPORT_JOBS, 10),
    ("imports", _IMPORT_EVENT_KEYS, BATCH),
    ("shipments", _TRACKED_SHIPMENTS, BATCH),
    ("shipments", _SHIPMENT_REFS, BATCH),
)


def defaults(settings: IngestSettings) -> dict[str, float]:
    """Days per category without an override (``GET /v1/retention/ingest`` shows them)."""
    return {
        "shipments": settings.shipment_retention_days,
        "idempotency_keys": settings.idempotency_ttl_hours / 24,
        "imports": settings.import_retention_days,
    }


async def purge_tables(pool: Any, default_days: dict[str, float], pause_s: float = 0.0) -> dict[str, int]:
    """Delete what each tenant's retention lets go (see the module docstring); rows per table."""
    counts: dict[str, int] = {}
    for category, sql, batch in RULES:
        found = await delete_per_tenant(
            pool, sql, category, default_days[category], batch=batch, pause_s=pause_s
        )
        add_counts(counts, found)
    return counts


def retention(settings: IngestSettings) -> Purge:
    """The rule ``ServiceDefinition.retention`` takes."""
    days, pause_s = defaults(settings), settings.housekeeping_pause_ms / 1000

    async def purge(pool: Any) -> dict[str, int]:
        return await purge_tables(pool, days, pause_s=pause_s)

    return purge
