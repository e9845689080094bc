-- Last mile (own fleet): per shipment, what its positions told eta (rastro_eta.domain.last_mile).
-- No coordinates are kept, only times and distances. One row per shipment that ever had a usable
-- position; purged with its shipment (rastro_eta.housekeeping).
CREATE TABLE IF NOT EXISTS last_mile (
    tenant_id        text             NOT NULL,
    tracking_number  text             NOT NULL,
    vehicle_id       text             NOT NULL,
    -- the newest position handled: an older one arriving later is ignored
    last_position_at timestamptz      NOT NULL,
    positions_seen   integer          NOT NULL DEFAULT 0 CHECK (positions_seen >= 0),
    -- the position time of the newest estimate (published or not): how current the one in force is
    estimated_from   timestamptz,
    -- the last-mile ETA last published on rastro.eta.v1 (the throttle compares with expected_at)
    expected_at      timestamptz,
    promise_at       timestamptz,
    remaining_m      integer          CHECK (remaining_m >= 0),
    speed_kmh        double precision,
    confidence       text,
    model_version    text,
    milestone        text,
    predicted_at     timestamptz,
    event_id         text,
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tracking_number)
);
