-- Retention of the dead-letter store (docs/database.md): dead letters untouched for
-- RASTRO_DLQ_REPLAY_RETENTION_DAYS go — replayed or not — with their replays and job items, and
-- finished replay jobs of that age with theirs, in small batches, by the housekeeper.

-- The purge looks for dead letters by their last change (stored, replayed, failed again, purged).
-- Rows are updated, so a B-tree, not BRIN.
CREATE INDEX dead_letters_updated_at ON dead_letters (updated_at);

-- Which job items name a dead letter: the purge skips letters an active job still has to replay, deletes
-- the items of the letters it removes, and Postgres checks the foreign key of replay_job_items on every
-- deleted dead letter — without this index each of those is a scan of every item of every job.
CREATE INDEX replay_job_items_dead_letter ON replay_job_items (dead_letter_id);
