-- The dead-letter store (search_path is the dlq_replay schema).

CREATE TABLE dead_letters (
    id                 text        PRIMARY KEY,                 -- ULID
    service            text        NOT NULL,                    -- the service that failed it
    reason             text        NOT NULL,
    error_message      text        NOT NULL DEFAULT '',
    status             text        NOT NULL DEFAULT 'new'
                       CHECK (status IN ('new', 'replayed', 'failed_after_replay', 'purged')),
    dlq_topic          text        NOT NULL,
    dlq_partition      integer     NOT NULL,
    dlq_offset         bigint      NOT NULL,
    original_topic     text        NOT NULL,
    original_partition integer     NOT NULL,
    original_offset    bigint      NOT NULL,
    consumer_group     text,
    key                bytea,                                   -- byte for byte as received
    value              bytea,
    header_names       text[]      NOT NULL DEFAULT '{}',
    header_values      bytea[]     NOT NULL DEFAULT '{}',
    key_text           text,                                    -- the key as text, for searching
    tenant             text,                                    -- NULL: only operators see it
    subject            text,
    event_type         text,
    event_id           text,
    attempts           integer     NOT NULL DEFAULT 1,
    first_failed_at    timestamptz NOT NULL,
    last_failed_at     timestamptz NOT NULL,
    replay_count       integer     NOT NULL DEFAULT 0,         -- replays that came back failed
    stored_at          timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    purged_at          timestamptz,
    purged_by          text,
    -- One record failing in one service is one dead letter, however often its DLQ record is delivered.
    -- (Two services consuming the same topic each own their own dead letter of the same record.)
    UNIQUE (service, original_topic, original_partition, original_offset)
);

CREATE INDEX dead_letters_newest ON dead_letters (last_failed_at DESC, id DESC);
CREATE INDEX dead_letters_tenant_newest ON dead_letters (tenant, last_failed_at DESC, id DESC);
CREATE INDEX dead_letters_service_reason ON dead_letters (service, reason);

-- The audit trail of replays: who sent which dead letter back, when and why.
CREATE TABLE replays (
    replay_id      text        PRIMARY KEY,                     -- ULID, sent as rastro-replay-id
    dead_letter_id text        NOT NULL REFERENCES dead_letters (id),
    requested_by   text        NOT NULL,                        -- the API key id
    reason         text        NOT NULL,
    target_topic   text        NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    failed_at      timestamptz                                  -- set when the replay was dead-lettered again
);

CREATE INDEX replays_dead_letter ON replays (dead_letter_id, at);
