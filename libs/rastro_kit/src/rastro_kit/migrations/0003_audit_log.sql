-- The audit log every service keeps in its own schema (docs/audit.md): who did what, when, from where.
-- Append-only. Services connect as the table's owner, so REVOKE alone would not hold: a trigger refuses
-- every UPDATE and TRUNCATE, and every DELETE except the retention purge, which names its cut-off in the
-- transaction-local setting rastro.audit_purge_before (at least 30 days ago) and may then delete only
-- rows older than it.
-- (Named audit_events: dlq-replay's own replay trail is already called audit_log.)
CREATE TABLE IF NOT EXISTS audit_events (
    id            bigserial   PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    tenant_id     text,                   -- the tenant acted on; NULL: none or every tenant (operator)
    actor_key_id  text        NOT NULL,   -- the API key id, never the key; 'system' for background work
    actor_role    text,
    actor_tenant  text,                   -- the key's own tenant (differs for a 3PL key); NULL: operator
    action        text        NOT NULL,   -- e.g. key.create, subscription.delete, dead_letters.replay
    target        text,
    details       jsonb       NOT NULL DEFAULT '{}',  -- before/after summaries, never secrets
    client_ip     text,
    forwarded_for text,
    user_agent    text,
    request_id    text,
    trace_id      text
);

CREATE INDEX IF NOT EXISTS audit_events_tenant_newest ON audit_events (tenant_id, id DESC);
CREATE INDEX IF NOT EXISTS audit_events_at ON audit_events USING brin (at);

CREATE OR REPLACE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cutoff text := current_setting('rastro.audit_purge_before', true);
BEGIN
    -- Not even the purge path deletes anything younger than 30 days (the least retention there is).
    IF TG_OP = 'DELETE' AND coalesce(cutoff, '') <> '' AND OLD.at < cutoff::timestamptz
       AND cutoff::timestamptz <= now() - interval '30 days' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'P0001';
END;
$$;

DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_guard();

DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_guard();
