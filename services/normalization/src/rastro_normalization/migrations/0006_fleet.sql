-- Own-fleet deliveries (rastro_normalization.fleet, docs/fleet.md): which vehicle carries which shipment
-- (from order.shipped's vehicle_id / route_id), the tenants' planned routes, each shipment's geofence
-- state, and the tenants' geofence settings.
CREATE TABLE IF NOT EXISTS fleet_assignments (
    tenant_id       text NOT NULL,
    tracking_number text NOT NULL,
    vehicle_id      text NOT NULL,
    route_id        text,
    assigned_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tracking_number)
);
-- The geofence processor's one read per position: the shipments a vehicle carries.
CREATE INDEX IF NOT EXISTS fleet_assignments_vehicle ON fleet_assignments (tenant_id, vehicle_id);

CREATE TABLE IF NOT EXISTS fleet_routes (
    tenant_id   text NOT NULL,
    route_id    text NOT NULL,
    points      jsonb NOT NULL,          -- [[lat, lon], ...]
    corridor_m  double precision,        -- NULL: the tenant's (or the service's) default
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, route_id)
);

CREATE TABLE IF NOT EXISTS geofence_state (
    tenant_id       text NOT NULL,
    tracking_number text NOT NULL,
    vehicle_id      text NOT NULL,
    state           jsonb NOT NULL,      -- rastro_normalization.domain.geofence.FenceState, < 1 KB
    position        jsonb,               -- the last position and what is left to the destination
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tracking_number)
);

CREATE TABLE IF NOT EXISTS geofence_settings (
    tenant_id  text PRIMARY KEY,
    settings   jsonb NOT NULL,           -- overrides of FenceSettings' fields
    updated_at timestamptz NOT NULL DEFAULT now()
);
