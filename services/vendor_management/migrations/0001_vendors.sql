CREATE TABLE vendors (
    id          uuid        PRIMARY KEY,
    owner_id    uuid        NOT NULL,
    name        text        NOT NULL,
    category    text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    active      boolean     NOT NULL DEFAULT true,
    -- Bumped on every change and carried in each event, so consumers can ignore stale events.
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vendors_category ON vendors (category, name);
CREATE INDEX vendors_owner ON vendors (owner_id);

-- Transactional outbox: an event row is written in the same transaction as the vendor change and
-- published to JetStream afterwards by the relay, which then sets published_at.
CREATE TABLE outbox (
    seq          bigserial   PRIMARY KEY,
    id           uuid        NOT NULL UNIQUE,
    subject      text        NOT NULL,
    payload      bytea       NOT NULL,
    request_id   text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
