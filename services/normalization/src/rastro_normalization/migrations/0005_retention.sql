-- Retention of the read model (docs/database.md): finished shipments untouched for
-- RASTRO_NORMALIZATION_RETENTION_DAYS go with their timelines, and order events and order facts of
-- that age go too, in small batches, by the housekeeper.

-- The purge looks for finished shipments by their last change. Partial: only finished shipments are in
-- it, so a shipment in progress (the rows the consumer updates most) costs it nothing; updated_at is
-- already in shipments_list, so these updates were never HOT anyway. The predicate is written exactly
-- as the purge writes it, so the planner can use the index.
CREATE INDEX shipments_finished ON shipments (updated_at)
    WHERE status IN ('cancelled', 'delivered', 'returned');

-- When an order event was stored (occurred_at is the client's clock, and a backfill of old orders must
-- not be purged the hour it arrives). Rows stored before this migration count from now. Append-only, in
-- arrival order: a BRIN index serves the range scan and costs almost nothing on insert.
ALTER TABLE order_events ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX order_events_recorded_at ON order_events USING brin (recorded_at);

-- Order facts are upserted (updated_at moves), so a B-tree, not BRIN.
CREATE INDEX order_facts_updated_at ON order_facts (updated_at);
