-- The notification service's tables (schema "notification"; the kit's inbox/outbox live beside them).

CREATE TABLE subscriptions (
    id              text        PRIMARY KEY,              -- sub_<ULID>
    tenant_id       text        NOT NULL,
    url             text        NOT NULL,
    event_types     text[]      NOT NULL,
    description     text,
    -- Kept readable: HMAC signing needs the key itself. Protect the database (and its backups) accordingly.
    secret          text        NOT NULL,
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text,
    failing_since   timestamptz,                          -- first failure of the current failing streak
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, id);

CREATE TABLE messages (
    id              text        PRIMARY KEY,              -- msg_<ULID>: the webhook-id, stable across retries
    seq             bigserial   NOT NULL,                 -- creation order: per-shipment ordering
    subscription_id text        NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    tenant_id       text        NOT NULL,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    ordering_key    text        NOT NULL,                 -- the record key: tenant/tracking number
    body            text        NOT NULL,                 -- the exact JSON sent, the same on every attempt
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,       -- every attempt ever
    round_attempts  integer     NOT NULL DEFAULT 0,       -- attempts since creation or the last resend
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    leased_until    timestamptz,                          -- set while an instance holds the message
    claim_id        text,                                 -- which claim holds it (fences a stale sender)
    last_attempt_at timestamptz,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE status = 'pending';
CREATE INDEX messages_in_order ON messages (subscription_id, ordering_key, seq) WHERE status = 'pending';
CREATE INDEX messages_by_subscription ON messages (subscription_id, id);

CREATE TABLE attempts (
    id               bigserial        PRIMARY KEY,
    message_id       text             NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    subscription_id  text             NOT NULL,
    attempt_number   integer          NOT NULL,
    attempted_at     timestamptz      NOT NULL,
    status_code      integer,
    latency_ms       double precision NOT NULL,
    response_excerpt text,
    error            text,
    error_detail     text,
    outcome          text             NOT NULL
);
CREATE INDEX attempts_by_subscription ON attempts (subscription_id, id);
CREATE INDEX attempts_by_message ON attempts (message_id, id);
