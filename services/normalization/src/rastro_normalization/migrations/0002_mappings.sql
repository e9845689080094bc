-- Tenant mappings (de-para): carrier aliases, service aliases, status overrides; versioned and audited.
CREATE TABLE mapping_versions (
    tenant_id  text PRIMARY KEY,
    version    bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- alias_key is the folded alias (case, accents and separators removed): the real key of an alias.
CREATE TABLE carrier_aliases (
    tenant_id  text NOT NULL,
    alias_key  text NOT NULL,
    alias      text NOT NULL,
    carrier    text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, alias_key)
);

CREATE TABLE service_aliases (
    tenant_id  text NOT NULL,
    alias_key  text NOT NULL,
    alias      text NOT NULL,
    service    text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, alias_key)
);

CREATE TABLE status_overrides (
    tenant_id    text NOT NULL,
    carrier      text NOT NULL,
    code         text NOT NULL,
    status       text NOT NULL,
    substatus    text NOT NULL,
    descriptions jsonb NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, carrier, code)
);

-- Append-only audit trail: one row per change, with the version it produced.
CREATE TABLE mapping_changes (
    id         bigserial PRIMARY KEY,
    tenant_id  text NOT NULL,
    version    bigint NOT NULL,
    kind       text NOT NULL,
    key        text NOT NULL,
    action     text NOT NULL,
    before     jsonb,
    after      jsonb,
    changed_by text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, version)
);

CREATE FUNCTION mapping_changes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'mapping_changes is append-only';
END $$;
CREATE TRIGGER mapping_changes_append_only BEFORE UPDATE OR DELETE ON mapping_changes
    FOR EACH ROW EXECUTE FUNCTION mapping_changes_append_only();

-- The shipment list filters by service, and by tracking-number prefix (q).
CREATE INDEX shipments_service ON shipments (tenant_id, service);
CREATE INDEX shipments_tracking_prefix ON shipments (tenant_id, tracking_number text_pattern_ops);
