-- Retention of ingest's tables (rastro_ingest.housekeeping, docs/database.md): idempotency keys, CSV
-- imports and polled shipments go by age, per tenant (kit migration 0008, retention_policies).

-- When a re-upload key was stored: they go with the imports of their age. Rows stored before this
-- migration count from now (a constant default: no table rewrite). Append-only, so BRIN.
ALTER TABLE import_event_keys ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS import_event_keys_created ON import_event_keys USING brin (created_at);

-- Finished jobs by the time they ended; few rows, but the purge should not read the live ones.
CREATE INDEX IF NOT EXISTS import_jobs_finished ON import_jobs (coalesce(finished_at, updated_at))
    WHERE status <> 'processing';

-- Polled shipments that are no longer polled (delivered, stopped, expired), by their last news.
CREATE INDEX IF NOT EXISTS tracked_shipments_finished ON tracked_shipments (last_news_at)
    WHERE next_poll_at IS NULL;
