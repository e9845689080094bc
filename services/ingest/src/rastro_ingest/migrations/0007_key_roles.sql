-- Roles on API keys (docs/roles.md): a named role decides a key's scopes; ``tenants`` lists the further
-- tenants a 3PL operator key may act for. Keys made before roles keep role NULL and their scopes.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS role text;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS tenants text[] NOT NULL DEFAULT '{}';
