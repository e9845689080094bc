-- CSV import jobs, their per-row errors, and the identity of every event an import has enqueued
-- (so a re-upload of the same file enqueues nothing again).
CREATE TABLE import_jobs (
    id             text PRIMARY KEY,
    tenant_id      text NOT NULL REFERENCES tenants(id),
    status         text NOT NULL CHECK (status IN ('processing', 'completed', 'failed')),
    filename       text,
    options        jsonb NOT NULL,
    rows_total     bigint,
    rows_read      bigint NOT NULL DEFAULT 0,
    rows_accepted  bigint NOT NULL DEFAULT 0,
    rows_rejected  bigint NOT NULL DEFAULT 0,
    rows_duplicate bigint NOT NULL DEFAULT 0,
    errors_stored  bigint NOT NULL DEFAULT 0,
    bytes_received bigint NOT NULL DEFAULT 0,
    file_sha256    text,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX import_jobs_tenant ON import_jobs(tenant_id, id DESC);

CREATE TABLE import_errors (
    job_id     text   NOT NULL REFERENCES import_jobs(id) ON DELETE CASCADE,
    row_number bigint NOT NULL,
    field      text   NOT NULL,
    message    text   NOT NULL
);
CREATE INDEX import_errors_job ON import_errors(job_id, row_number);

CREATE TABLE import_event_keys (
    tenant_id  text NOT NULL,
    event_key  uuid NOT NULL,
    PRIMARY KEY (tenant_id, event_key)
);
