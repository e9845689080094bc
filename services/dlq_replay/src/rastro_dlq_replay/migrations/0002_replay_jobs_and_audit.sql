-- Replay jobs (a filter's dead letters replayed at a bounded rate, resumable) and the audit trail.

CREATE TABLE replay_jobs (
    id              text             PRIMARY KEY,             -- ULID
    requested_by    text             NOT NULL,                -- the API key id, never the key
    reason          text             NOT NULL,
    tenant          text,                                     -- the scope; NULL: an operator's job
    filter          jsonb            NOT NULL,
    rate_per_second double precision NOT NULL CHECK (rate_per_second > 0),
    status          text             NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'completed', 'cancelled')),
    total           integer          NOT NULL,
    replayed        integer          NOT NULL DEFAULT 0,
    skipped         integer          NOT NULL DEFAULT 0,
    cursor          integer          NOT NULL DEFAULT 0,      -- seq of the last item handled
    created_at      timestamptz      NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz      NOT NULL DEFAULT now(),
    cancelled_by    text
);

CREATE INDEX replay_jobs_active ON replay_jobs (created_at, id) WHERE status IN ('pending', 'running');
CREATE INDEX replay_jobs_tenant_newest ON replay_jobs (tenant, created_at DESC, id DESC);

-- The dead letters a job selected when it was created, in replay order, and what became of each.
CREATE TABLE replay_job_items (
    job_id         text    NOT NULL REFERENCES replay_jobs (id),
    seq            integer NOT NULL,
    dead_letter_id text    NOT NULL REFERENCES dead_letters (id),
    outcome        text    CHECK (outcome IN ('replayed', 'not_found', 'purged', 'unknown_service')),
    replay_id      text,
    PRIMARY KEY (job_id, seq)
);

ALTER TABLE replays ADD COLUMN job_id text REFERENCES replay_jobs (id);
CREATE INDEX replays_job ON replays (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX dead_letters_event_type ON dead_letters (event_type);

-- Who did what to dead letters, when and why: append-only (a trigger refuses updates and deletes).
CREATE TABLE audit_log (
    id              bigserial   PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor           text        NOT NULL,                     -- the API key id, never the key
    action          text        NOT NULL,
    reason          text,
    tenant          text,                                     -- the scope it was done in
    filter          jsonb,
    counts          jsonb       NOT NULL DEFAULT '{}',
    job_id          text,
    dead_letter_ids text[]      NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_log_tenant_newest ON audit_log (tenant, id DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
