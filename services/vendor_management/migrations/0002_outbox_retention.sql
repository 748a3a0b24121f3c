-- Published outbox rows are deleted some days after publication (OUTBOX_RETENTION_DAYS).
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
