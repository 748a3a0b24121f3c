-- Who owns each vendor, learned from the vendor.* events. vendor-management never changes a vendor's
-- owner, so the first event seen decides; rows stay after vendor.deleted (late events still route).
CREATE TABLE webhook_vendors (
    vendor_id  text        PRIMARY KEY,
    owner_id   text        NOT NULL,
    learned_at timestamptz NOT NULL DEFAULT now()
);

-- The vendors a subscription follows, each owned by the subscriber; NULL: every vendor it owns.
-- Subscriptions made before this release keep working, for their owner's own vendors only.
ALTER TABLE webhook_subscriptions ADD COLUMN vendor_ids text[];
-- The receiver's host[:port] as the URL writes it: deliveries are limited and circuit-broken per target.
ALTER TABLE webhook_subscriptions ADD COLUMN target text;
UPDATE webhook_subscriptions SET target = lower(substring(url FROM '://([^/?#]*)'));
ALTER TABLE webhook_subscriptions ALTER COLUMN target SET NOT NULL;
CREATE INDEX webhook_subscriptions_target ON webhook_subscriptions (target);
-- Fan-out now finds subscriptions by the vendor's owner (webhook_subscriptions_owner), not by type.
DROP INDEX webhook_subscriptions_types;

-- Retention deletes finished deliveries (their attempts go with them) by age.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE status <> 'pending';
