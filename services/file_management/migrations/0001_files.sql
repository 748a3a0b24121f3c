-- File metadata; the content lives on the storage backend under the file's id.
-- A row is committed only after its content is durable in place (see storage.py / routes/files.py).
CREATE TABLE files (
    id           uuid        PRIMARY KEY,
    owner_id     text        NOT NULL,
    filename     text        NOT NULL,
    content_type text        NOT NULL,
    size_bytes   bigint      NOT NULL CHECK (size_bytes >= 0),
    sha256       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_owner ON files (owner_id, created_at DESC);
