-- Carrier connections (per tenant: credentials for polling, the push secret, polling settings) and the
-- shipments ingest polls for them.
CREATE TABLE carrier_connections (
    id                         text PRIMARY KEY,
    tenant_id                  text NOT NULL REFERENCES tenants(id),
    carrier                    text NOT NULL,
    name                       text,
    base_url                   text,
    credentials                jsonb NOT NULL DEFAULT '{}',
    webhook_secret             text NOT NULL,
    polling_enabled            boolean NOT NULL DEFAULT true,
    poll_interval_s            integer NOT NULL DEFAULT 3600,
    delivered_poll_interval_s  integer NOT NULL DEFAULT 86400,
    delivered_poll_days        integer NOT NULL DEFAULT 3,
    expire_after_days          integer NOT NULL DEFAULT 30,
    batch_size                 integer NOT NULL DEFAULT 50,
    created_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX carrier_connections_tenant ON carrier_connections(tenant_id, carrier);

CREATE TABLE tracked_shipments (
    connection_id   text NOT NULL REFERENCES carrier_connections(id) ON DELETE CASCADE,
    tracking_number text NOT NULL,
    tenant_id       text NOT NULL,
    state           text NOT NULL DEFAULT 'in_transit',  -- in_transit | delivered | stopped | expired
    seen_event_ids  text[] NOT NULL DEFAULT '{}',        -- carrier events already published
    last_news_at    timestamptz NOT NULL DEFAULT now(),  -- the last time a new carrier event arrived
    delivered_at    timestamptz,
    next_poll_at    timestamptz,                          -- NULL: never again
    last_polled_at  timestamptz,
    polls           integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, tracking_number)
);
CREATE INDEX tracked_shipments_due ON tracked_shipments(next_poll_at) WHERE next_poll_at IS NOT NULL;
