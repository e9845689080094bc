-- Retention of eta's per-shipment rows (rastro_eta.housekeeping, docs/database.md): a finished shipment
-- untouched for the tenant's `shipments` retention goes with its predictions, prediction history and
-- outcome. Partial, like normalization's shipments_finished: shipments in progress cost it nothing. The
-- predicate is written exactly as the purge writes it, so the planner can use the index.
CREATE INDEX IF NOT EXISTS shipments_finished ON shipments (updated_at)
    WHERE status IN ('cancelled', 'delivered', 'returned');
