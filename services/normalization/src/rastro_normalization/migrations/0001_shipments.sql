-- The shipment read model: one row per shipment, and its timeline (every normalized event kept).
CREATE TABLE shipments (
    tenant_id       text NOT NULL,
    tracking_number text NOT NULL,
    carrier         text,
    service         text,
    status          text NOT NULL,
    substatus       text NOT NULL,
    order_id        text,
    origin          jsonb,
    destination     jsonb,
    promised_date   date,
    created_at      timestamptz,
    shipped_at      timestamptz,
    delivered_at    timestamptz,
    status_since    timestamptz,
    eta             jsonb,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tracking_number)
);
CREATE INDEX shipments_list ON shipments (tenant_id, updated_at DESC, tracking_number);
CREATE INDEX shipments_status ON shipments (tenant_id, status);

CREATE TABLE timeline_entries (
    tenant_id       text NOT NULL,
    tracking_number text NOT NULL,
    event_id        text NOT NULL,
    carrier         text,
    service         text,
    status_code     text NOT NULL,
    status          text NOT NULL,
    substatus       text NOT NULL,
    description     text,
    descriptions    jsonb NOT NULL DEFAULT '{}',
    occurred_at     timestamptz NOT NULL,
    occurred_at_local text NOT NULL,
    location        jsonb,
    effect          text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tracking_number, event_id)
);

-- Order events that arrived before the order had a tracking number: joined to the shipment once shipped.
CREATE TABLE order_events (
    tenant_id   text NOT NULL,
    order_id    text NOT NULL,
    event_id    text NOT NULL,
    status      text NOT NULL,
    substatus   text NOT NULL,
    code        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    occurred_at_local text NOT NULL,
    PRIMARY KEY (tenant_id, order_id, event_id)
);
