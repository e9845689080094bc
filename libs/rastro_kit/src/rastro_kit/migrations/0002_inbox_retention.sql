-- The inbox only has to remember an event id as long as that event can come back: Kafka retention,
-- retry tiers and dead-letter replays. Housekeeping deletes older rows by processed_at; a BRIN index
-- serves that range scan and costs almost nothing on the insert path (rows arrive in time order).
CREATE INDEX IF NOT EXISTS inbox_processed_at ON inbox USING brin (processed_at);
