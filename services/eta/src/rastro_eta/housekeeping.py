"""Retention of eta's per-shipment rows, one of the kit housekeeper's rules (run hourly, after the inbox,
by one instance), per tenant (``rastro_kit.retention``, category ``shipments``).

What goes: a finished shipment (``delivered``, ``returned``, ``cancelled``) whose row has not changed
for the tenant's ``shipments`` retention (``RASTRO_ETA_RETENTION_DAYS``, 365, unless the tenant
overrides it), with its prediction in force, its prediction history, its delivery outcome (so the
ETA KPIs then cover the retention window) and its last-mile row (``last_mile``). A shipment in
progress is never purged, however old.

What stays: lane statistics (``lane_states``, ``lane_samples``): they are what predictions learn from.
A purged shipment's lane sample keeps its transit time but loses its tracking number (``purged:<id>``),
so nothing in eta names the shipment any more; should the shipment's delivery come back after that, it
is learned again. Shipments are taken ``FOR UPDATE SKIP LOCKED``, so the purge never waits for the
consumer. Index: migration 0008 (samples by tracking number: their unique key).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rastro_eta.settings import EtaSettings
from rastro_kit.housekeeping import BATCH, Purge
from rastro_kit.retention import delete_per_tenant

__all__ = ["FINISHED_SHIPMENTS", "purge_shipments", "retention"]

HISTORY_PER_SHIPMENT = 5  # predictions published per journey, roughly: sizes a batch of shipments

# The status list is written exactly as in the partial index shipments_finished (migration 0008).
FINISHED_SHIPMENTS = """
WITH doomed AS (
    SELECT tenant_id, tracking_number FROM shipments
    WHERE status IN ('cancelled', 'delivered', 'returned') AND updated_at < now() - $1::interval
      AND tenant_id {tenant}
    LIMIT $3 FOR UPDATE SKIP LOCKED
), history AS (
    DELETE FROM prediction_history h USING doomed d
    WHERE h.tenant_id = d.tenant_id AND h.tracking_number = d.tracking_number RETURNING 1
), predictions AS (
    DELETE FROM predictions p USING doomed d
    WHERE p.tenant_id = d.tenant_id AND p.tracking_number = d.tracking_number RETURNING 1
), outcomes AS (
    DELETE FROM outcomes o USING doomed d
    WHERE o.tenant_id = d.tenant_id AND o.tracking_number = d.tracking_number RETURNING 1
), last_mile AS (
    DELETE FROM last_mile m USING doomed d
    WHERE m.tenant_id = d.tenant_id AND m.tracking_number = d.tracking_number RETURNING 1
), samples AS (
    UPDATE lane_samples l SET tracking_number = 'purged:' || l.id FROM doomed d
    WHERE l.tenant_id = d.tenant_id AND l.tracking_number = d.tracking_number RETURNING 1
), gone AS (
    DELETE FROM shipments s USING doomed d
    WHERE s.tenant_id = d.tenant_id AND s.tracking_number = d.tracking_number RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS shipments, (SELECT count(*) FROM predictions) AS predictions,
       (SELECT count(*) FROM history) AS prediction_history, (SELECT count(*) FROM outcomes) AS outcomes,
       (SELECT count(*) FROM last_mile) AS last_mile,
       (SELECT count(*) FROM samples) AS lane_samples_unlinked
"""


async def purge_shipments(
    pool: Any, older_than: timedelta, batch: int = BATCH, pause_s: float = 0.0
) -> dict[str, int]:
    """Delete finished shipments older than each tenant's retention (``older_than`` for tenants without
    an override) with their rows; rows deleted per table."""
    shipments = max(batch // HISTORY_PER_SHIPMENT, 1)
    days = older_than / timedelta(days=1)
    return await delete_per_tenant(
        pool, FINISHED_SHIPMENTS, "shipments", days, batch=shipments, pause_s=pause_s
    )


def retention(settings: EtaSettings) -> Purge:
    """The rule ``ServiceDefinition.retention`` takes."""
    older_than, pause_s = timedelta(days=settings.retention_days), settings.housekeeping_pause_ms / 1000

    async def purge(pool: Any) -> dict[str, int]:
        return await purge_shipments(pool, older_than, pause_s=pause_s)

    return purge
