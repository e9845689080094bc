-- Issue 7, second half: secret rotation, custom headers, rate limit, carrier filter, circuit breaker and
-- auto-disable on subscriptions; customer notifications (settings, templates, recipients, opt-outs,
-- notices) beside them.

ALTER TABLE subscriptions
    ADD COLUMN previous_secret            text,          -- still signs until previous_secret_expires_at
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD COLUMN headers                    jsonb        NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN rate_limit_per_s           double precision CHECK (rate_limit_per_s > 0),
    ADD COLUMN rate_tat                   timestamptz,   -- GCRA "theoretical arrival time" of the next send
    ADD COLUMN carriers                   text[],        -- NULL: every carrier
    ADD COLUMN consecutive_failures       integer      NOT NULL DEFAULT 0,
    ADD COLUMN circuit_open_until         timestamptz,   -- set while the breaker keeps the endpoint parked
    ADD COLUMN disabled_at                timestamptz;

CREATE INDEX messages_failed_by_subscription ON messages (subscription_id, created_at) WHERE status = 'failed';
CREATE INDEX messages_finished_at ON messages (created_at) WHERE status <> 'pending';
CREATE INDEX attempts_attempted_at ON attempts (attempted_at);

-- Customer notifications: one row of settings per tenant (defaults apply when absent).
CREATE TABLE notice_settings (
    tenant_id          text        PRIMARY KEY,
    time_zone          text        NOT NULL DEFAULT 'America/Sao_Paulo',
    quiet_start        time,                             -- both NULL: no quiet hours
    quiet_end          time,
    default_locale     text        NOT NULL DEFAULT 'pt-BR',
    alert_email        text,                             -- where endpoint alerts for the tenant go
    tracking_url       text,                             -- e.g. https://shop.example/track/{tracking_number}
    messaging_url      text,                             -- the messaging provider's webhook (SMS, WhatsApp …)
    messaging_secret   text,                             -- whsec_… that signs what goes to it
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Per-tenant overrides of the shipped default templates.
CREATE TABLE notice_templates (
    tenant_id   text        NOT NULL,
    milestone   text        NOT NULL,
    locale      text        NOT NULL,
    subject     text        NOT NULL,
    body        text        NOT NULL,
    short       text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, milestone, locale)
);

-- Who to tell about one shipment (personal data: never logged, purged after the retention period).
CREATE TABLE recipients (
    tenant_id          text        NOT NULL,
    tracking_number    text        NOT NULL,
    name               text,
    email              text,
    phone              text,
    locale             text,
    last_expected_date date,                             -- the ETA last seen, to tell a change
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tracking_number)
);
CREATE INDEX recipients_updated_at ON recipients (updated_at);

-- Opted-out addresses, kept only as a keyed hash of the normalized address.
CREATE TABLE opt_outs (
    tenant_id    text        NOT NULL,
    address_hash text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, address_hash)
);

-- Customer messages and owner alerts, queued durably and sent by the notice dispatcher.
CREATE TABLE notices (
    id              text        PRIMARY KEY,             -- ntc_<ULID>
    tenant_id       text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('customer', 'owner')),
    tracking_number text,
    milestone       text        NOT NULL,                -- shipped, …, eta_changed, endpoint_disabled
    dedupe_key      text        NOT NULL,                -- never two notices for one milestone of a shipment
    channel         text        NOT NULL CHECK (channel IN ('email', 'messaging')),
    address         text        NOT NULL,                -- e-mail address or phone number
    locale          text        NOT NULL,
    context         jsonb       NOT NULL,                -- what the template renders
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    attempts        integer     NOT NULL DEFAULT 0,
    send_after      timestamptz NOT NULL DEFAULT now(),
    leased_until    timestamptz,
    last_error      text,
    deferred_reason text,                                -- e.g. quiet_hours
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, channel, dedupe_key)
);
CREATE INDEX notices_due ON notices (send_after) WHERE status = 'pending';
CREATE INDEX notices_by_tenant ON notices (tenant_id, id);
CREATE INDEX notices_finished_at ON notices (created_at) WHERE status <> 'pending';
