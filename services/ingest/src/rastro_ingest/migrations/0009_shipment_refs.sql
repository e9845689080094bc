-- What EDI occurrence files are matched by (rastro_ingest.references): an order's invoice (number and
-- NF-e access key, from invoice.issued) and its tracking number (from order.shipped or any order event
-- that names both). One row per order, filled in as its events are accepted.
CREATE TABLE IF NOT EXISTS shipment_refs (
    tenant_id       text NOT NULL,
    order_id        text NOT NULL,
    tracking_number text,
    carrier         text,
    invoice_number  text,
    invoice_key     text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, order_id)
);
CREATE INDEX IF NOT EXISTS shipment_refs_invoice ON shipment_refs (tenant_id, invoice_number)
    WHERE invoice_number IS NOT NULL;
CREATE INDEX IF NOT EXISTS shipment_refs_invoice_key ON shipment_refs (tenant_id, invoice_key)
    WHERE invoice_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS shipment_refs_tracking ON shipment_refs (tenant_id, tracking_number)
    WHERE tracking_number IS NOT NULL;
-- Retention (category shipments) goes by the last time an event of the order was accepted.
CREATE INDEX IF NOT EXISTS shipment_refs_updated ON shipment_refs USING brin (updated_at);
