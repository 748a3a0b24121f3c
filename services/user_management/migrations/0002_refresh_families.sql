-- Refresh-token families: every token rotated from one login shares the login's family. A token that
-- is presented again after it was rotated (a stolen copy, or the real one after a thief used it first)
-- revokes the whole family, so its successor stops working too; logging out revokes it on purpose.
-- Tokens issued before families existed each become a family of their own.
ALTER TABLE refresh_tokens ADD COLUMN family_id uuid;
UPDATE refresh_tokens SET family_id = gen_random_uuid();
ALTER TABLE refresh_tokens ALTER COLUMN family_id SET NOT NULL;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id) WHERE revoked_at IS NULL;
