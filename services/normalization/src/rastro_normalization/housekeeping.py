"""Retention of the shipment read model, one of the kit housekeeper's rules (run hourly, after the
inbox, by one instance): without it every shipment and every timeline entry would stay forever.

What goes, once older than the tenant's ``shipments`` retention (``RASTRO_NORMALIZATION_RETENTION_DAYS``,
365, unless the tenant overrides it: ``rastro_kit.retention``, one pass per override):

- finished shipments (``delivered``, ``returned``, ``cancelled``) whose row has not changed for that
  long, with their timelines, their vehicle assignment and geofence state (the last position). A
  shipment still in progress is never purged, however old. An event that
  arrives later for a purged shipment starts it again from that event (the revision of the new row is
  NULL, so no consumer trusts a cached copy);
- order events stored that long ago (orders never shipped; shipped ones are copied into timelines);
- order facts not updated for that long;
- planned routes not updated for that long that no remaining shipment's vehicle follows.

Shipments are taken ``FOR UPDATE SKIP LOCKED``: the purge never waits for a row a consumer holds (so it
cannot deadlock with the consumer's key-ordered locks), and a consumer that wants a row being purged
waits one short batch, then creates it afresh. Indexes each statement uses: migration 0005 and the
EXPLAIN output in docs/database.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rastro_kit.housekeeping import BATCH, Purge
from rastro_kit.retention import add_counts, delete_per_tenant
from rastro_normalization.settings import NormalizationSettings

__all__ = ["ENTRIES_PER_SHIPMENT", "FINISHED_SHIPMENTS", "purge_read_model", "retention"]

ENTRIES_PER_SHIPMENT = 10  # a typical journey (docs/capacity.md), to size a batch of shipments

# The status list is written exactly as in the partial index shipments_finished (migration 0005).
FINISHED_SHIPMENTS = """
WITH doomed AS (
    SELECT tenant_id, tracking_number FROM shipments
    WHERE status IN ('cancelled', 'delivered', 'returned') AND updated_at < now() - $1::interval
      AND tenant_id {tenant}
    LIMIT $3 FOR UPDATE SKIP LOCKED
), timeline AS (
    DELETE FROM timeline_entries t USING doomed d
    WHERE t.tenant_id = d.tenant_id AND t.tracking_number = d.tracking_number RETURNING 1
), fleet AS (
    DELETE FROM fleet_assignments a USING doomed d
    WHERE a.tenant_id = d.tenant_id AND a.tracking_number = d.tracking_number RETURNING 1
), fences AS (
    DELETE FROM geofence_state g USING doomed d
    WHERE g.tenant_id = d.tenant_id AND g.tracking_number = d.tracking_number RETURNING 1
), gone AS (
    DELETE FROM shipments s USING doomed d
    WHERE s.tenant_id = d.tenant_id AND s.tracking_number = d.tracking_number RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS shipments, (SELECT count(*) FROM timeline) AS timeline_entries,
       (SELECT count(*) FROM fleet) AS fleet_assignments, (SELECT count(*) FROM fences) AS geofence_states
"""
_ORDER_EVENTS = """
WITH gone AS (
    DELETE FROM order_events WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM order_events WHERE recorded_at < now() - $1::interval AND tenant_id {tenant}
        LIMIT $3))
    RETURNING 1
)
SELECT count(*) AS order_events FROM gone
"""
_ROUTES = """
WITH gone AS (
    DELETE FROM fleet_routes r WHERE (tenant_id, route_id) IN (
        SELECT tenant_id, route_id FROM fleet_routes f WHERE updated_at < now() - $1::interval
          AND tenant_id {tenant}
          AND NOT EXISTS (SELECT 1 FROM fleet_assignments a
                          WHERE a.tenant_id = f.tenant_id AND a.route_id = f.route_id)
        LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING 1
)
SELECT count(*) AS fleet_routes FROM gone
"""
_ORDER_FACTS = """
WITH gone AS (
    DELETE FROM order_facts WHERE (tenant_id, order_id) IN (
        SELECT tenant_id, order_id FROM order_facts WHERE updated_at < now() - $1::interval
          AND tenant_id {tenant}
        LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING 1
)
SELECT count(*) AS order_facts FROM gone
"""


async def purge_read_model(
    pool: Any, older_than: timedelta, batch: int = BATCH, pause_s: float = 0.0
) -> dict[str, int]:
    """Delete what is older than each tenant's ``shipments`` retention (``older_than`` for tenants
    without an override; see the module docstring); rows deleted per table."""
    default_days = older_than / timedelta(days=1)
    # A shipment takes its timeline with it (~10 rows): fewer shipments a batch keep a batch ~``batch`` rows.
    shipments = max(batch // ENTRIES_PER_SHIPMENT, 1)
    counts: dict[str, int] = {}
    rules = ((FINISHED_SHIPMENTS, shipments), (_ORDER_EVENTS, batch), (_ORDER_FACTS, batch), (_ROUTES, batch))
    for sql, size in rules:
        found = await delete_per_tenant(pool, sql, "shipments", default_days, batch=size, pause_s=pause_s)
        add_counts(counts, found)
    return counts


def retention(settings: NormalizationSettings) -> Purge:
    """The rule ``ServiceDefinition.retention`` takes."""
    older_than, pause_s = timedelta(days=settings.retention_days), settings.housekeeping_pause_ms / 1000

    async def purge(pool: Any) -> dict[str, int]:
        return await purge_read_model(pool, older_than, pause_s=pause_s)

    return purge
