-- lane-decay-v2: learned lane state (decayed quantile estimators per segment, JSON) per tenant and lane,
-- the finer lane attributes and milestones, the basis of each prediction, and delivery outcomes for KPIs.

CREATE TABLE IF NOT EXISTS lane_states (
    tenant_id   text        NOT NULL,
    lane_key    text        NOT NULL,
    level       text        NOT NULL,
    carrier     text,
    service     text,
    origin      text,
    destination text,
    deliveries  integer     NOT NULL CHECK (deliveries >= 0),
    state       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, lane_key)
);

ALTER TABLE shipments ADD COLUMN IF NOT EXISTS destination_zone text;
ALTER TABLE shipments ADD COLUMN IF NOT EXISTS out_for_delivery_at timestamptz;
ALTER TABLE lane_samples ADD COLUMN IF NOT EXISTS destination_zone text;
ALTER TABLE lane_samples ADD COLUMN IF NOT EXISTS promised_date date;

ALTER TABLE predictions ADD COLUMN IF NOT EXISTS segment text NOT NULL DEFAULT 'created';
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS weight double precision NOT NULL DEFAULT 0;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS confidence text NOT NULL DEFAULT 'low';
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS promise_quantile double precision NOT NULL DEFAULT 0.9;

-- One row per delivered shipment that had a prediction in force when it was delivered: what the KPIs
-- (ETA precision, on time vs promise) are computed from. Learned once, like the samples.
CREATE TABLE IF NOT EXISTS outcomes (
    tenant_id       text    NOT NULL,
    tracking_number text    NOT NULL,
    carrier         text,
    lane_key        text    NOT NULL,
    lane_level      text    NOT NULL,
    delivered_date  date    NOT NULL,
    expected_date   date    NOT NULL,
    promise_date    date    NOT NULL,
    shop_promised_date date,
    milestone       text    NOT NULL,
    model_version   text    NOT NULL,
    PRIMARY KEY (tenant_id, tracking_number)
);
CREATE INDEX IF NOT EXISTS outcomes_carrier ON outcomes (tenant_id, carrier);
