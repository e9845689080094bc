-- Master-key rotation (rastro_kit.personal_data, docs/privacy.md "Rotating the master key").
-- ``kek_id`` names the master key that wrapped a key: the first 16 hex of HMAC-SHA256(master,
-- "rastro-kek-id"). NULL means "wrapped by the master key in use before this migration": unwrapping
-- tries the current key, then the previous ones. ``purpose`` separates the data keys (DEKs) from the
-- per-tenant blind-index keys, which are stored wrapped too so that the blind indexes survive a new
-- master key. One active key per tenant *and purpose*.
ALTER TABLE data_keys ADD COLUMN IF NOT EXISTS kek_id text;
ALTER TABLE data_keys ADD COLUMN IF NOT EXISTS purpose text NOT NULL DEFAULT 'data'
    CHECK (purpose IN ('data', 'index'));
DROP INDEX IF EXISTS data_keys_one_active;
CREATE UNIQUE INDEX IF NOT EXISTS data_keys_one_active_per_purpose
    ON data_keys (tenant_id, purpose) WHERE state = 'active';
