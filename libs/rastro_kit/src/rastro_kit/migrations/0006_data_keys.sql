-- Per-tenant data keys (DEKs) of the personal-data encryption (rastro_kit.personal_data, docs/privacy.md),
-- in every service's own schema. ``wrapped`` is the DEK encrypted by the master key (AES-GCM, the AAD
-- binds tenant and key id); the plain key never reaches the database. One active key per tenant;
-- retired keys still open values sealed before a rotation until those are re-encrypted.
CREATE TABLE IF NOT EXISTS data_keys (
    key_id     text        PRIMARY KEY,
    tenant_id  text        NOT NULL,
    wrapped    bytea       NOT NULL,
    state      text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired')),
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS data_keys_one_active ON data_keys (tenant_id) WHERE state = 'active';
