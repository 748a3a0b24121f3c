-- Every accepted upload, kept for the quota window even after its file is deleted, so deleting and
-- uploading again does not reset a user's quota. Rows older than the window are pruned by uploads.
CREATE TABLE upload_ledger (
    id         bigserial   PRIMARY KEY,
    owner_id   text        NOT NULL,
    size_bytes bigint      NOT NULL CHECK (size_bytes >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX upload_ledger_owner ON upload_ledger (owner_id, created_at);
-- Recent uploads count against the quota from the start.
INSERT INTO upload_ledger (owner_id, size_bytes, created_at)
SELECT owner_id, size_bytes, created_at FROM files WHERE created_at > now() - interval '30 days';
