-- What the KPIs (docs/kpis.md) need beyond the state and the timeline: the sales channel and the shipping
-- cost the tenant sends on its order events (both optional), and indexes for the two cohorts a KPI
-- window reads (shipments created in the window, shipments delivered in it).
ALTER TABLE shipments
    ADD COLUMN sales_channel text,
    ADD COLUMN shipping_cost_amount numeric(18, 4),
    ADD COLUMN shipping_cost_currency text;

-- Order facts told before the order had a tracking number (order.created, usually): kept per order and
-- copied onto its shipments when they exist, as order_events are joined to their timelines.
CREATE TABLE order_facts (
    tenant_id              text NOT NULL,
    order_id               text NOT NULL,
    sales_channel          text,
    shipping_cost_amount   numeric(18, 4),
    shipping_cost_currency text,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, order_id)
);

CREATE INDEX shipments_kpi_created ON shipments (tenant_id, created_at);
-- Partial: a shipment not yet delivered costs this index nothing on each of its updates.
CREATE INDEX shipments_kpi_delivered ON shipments (tenant_id, delivered_at) WHERE delivered_at IS NOT NULL;
