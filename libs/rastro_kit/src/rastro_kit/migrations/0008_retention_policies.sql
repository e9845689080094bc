-- Per-tenant retention (rastro_kit.retention, docs/privacy.md "Retention per tenant"), in every service's
-- own schema: a row overrides the service's default for one tenant and one category (shipments,
-- delivery_log, recipients, dead_letters, idempotency_keys, imports). No row: the default applies.
-- Written only through PUT /v1/retention/<area>, which audits each change in the same transaction.
CREATE TABLE IF NOT EXISTS retention_policies (
    tenant_id  text        NOT NULL,
    category   text        NOT NULL,
    days       integer     NOT NULL CHECK (days BETWEEN 1 AND 3650),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL,  -- the API key id, never the key
    PRIMARY KEY (tenant_id, category)
);
-- The purge reads every override of one category once per round.
CREATE INDEX IF NOT EXISTS retention_policies_category ON retention_policies (category, tenant_id);
