-- What eta owns, in its own schema (search_path). Every row belongs to one tenant: lanes are learned
-- and read per tenant, so one shipper's deliveries never shape another's predictions.

-- What eta knows of each shipment, folded from rastro.shipments.v1.
CREATE TABLE IF NOT EXISTS shipments (
    tenant_id       text        NOT NULL,
    tracking_number text        NOT NULL,
    status          text        NOT NULL,
    carrier         text,
    service         text,
    origin          text,
    destination     text,
    first_seen_at   timestamptz NOT NULL,
    last_event_at   timestamptz NOT NULL,
    created_at      timestamptz,
    shipped_at      timestamptz,
    delivered_at    timestamptz,
    promised_date   date,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tracking_number)
);

-- One transit time per delivered shipment: a delivery seen twice (a redelivered event, a replay with
-- a new id) is learned once.
CREATE TABLE IF NOT EXISTS lane_samples (
    id              bigserial        PRIMARY KEY,
    tenant_id       text             NOT NULL,
    tracking_number text             NOT NULL,
    carrier         text,
    service         text,
    origin          text,
    destination     text,
    transit_days    double precision NOT NULL CHECK (transit_days >= 0),
    started_at      timestamptz      NOT NULL,
    delivered_at    timestamptz      NOT NULL,
    learned_at      timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, tracking_number)
);

-- "The most recent N samples of a lane", one index per lane level.
CREATE INDEX IF NOT EXISTS lane_samples_service_route
    ON lane_samples (tenant_id, carrier, service, origin, destination, delivered_at DESC);
CREATE INDEX IF NOT EXISTS lane_samples_route
    ON lane_samples (tenant_id, carrier, origin, destination, delivered_at DESC);
CREATE INDEX IF NOT EXISTS lane_samples_carrier ON lane_samples (tenant_id, carrier, delivered_at DESC);
CREATE INDEX IF NOT EXISTS lane_samples_tenant ON lane_samples (tenant_id, delivered_at DESC);

-- The prediction last published on rastro.eta.v1 for each shipment, with its basis.
CREATE TABLE IF NOT EXISTS predictions (
    tenant_id        text             NOT NULL,
    tracking_number  text             NOT NULL,
    expected_date    date             NOT NULL,
    promise_date     date             NOT NULL,
    milestone        text             NOT NULL,
    lane_level       text             NOT NULL,
    lane_carrier     text,
    lane_service     text,
    lane_origin      text,
    lane_destination text,
    sample_size      integer          NOT NULL CHECK (sample_size >= 0),
    model_version    text             NOT NULL,
    started_at       timestamptz      NOT NULL,
    expected_days    double precision NOT NULL,
    promise_days     double precision NOT NULL,
    predicted_at     timestamptz      NOT NULL,
    event_id         text             NOT NULL,
    PRIMARY KEY (tenant_id, tracking_number)
);
