-- The read model of vendors, built only from vendor events (never from vendor-management's tables).
-- A deleted vendor stays as a tombstone (deleted = true) so that a late, older event cannot bring it back.
CREATE TABLE vendor_documents (
    vendor_id   uuid        PRIMARY KEY,
    name        text        NOT NULL DEFAULT '',
    category    text        NOT NULL DEFAULT '',
    description text        NOT NULL DEFAULT '',
    active      boolean     NOT NULL DEFAULT false,
    deleted     boolean     NOT NULL DEFAULT false,
    version     integer     NOT NULL,
    last_event  uuid        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    document    tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', name), 'A')
        || setweight(to_tsvector('english', category), 'B')
        || setweight(to_tsvector('english', description), 'C')
    ) STORED
);
CREATE INDEX vendor_documents_search ON vendor_documents USING gin (document);
CREATE INDEX vendor_documents_category ON vendor_documents (category) WHERE NOT deleted AND active;
