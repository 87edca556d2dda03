-- Credentials that can be rotated and revoked, and what the hold quotas read.

-- API keys get a name, an expiry (a rotated key keeps working until then) and
-- the time of their last change, so every node can poll for what it missed.
ALTER TABLE api_keys
  ADD COLUMN name        text NOT NULL DEFAULT 'default',
  ADD COLUMN expires_at  timestamptz,
  ADD COLUMN changed_at  timestamptz NOT NULL DEFAULT now();
ALTER TABLE api_keys ALTER COLUMN created_at SET DEFAULT date_trunc('milliseconds', now());
-- Keyset cursors carry milliseconds (JSON numbers): keys made before this migration must compare exactly too.
UPDATE api_keys SET created_at = date_trunc('milliseconds', created_at);
CREATE INDEX api_keys_tenant_page ON api_keys (tenant_id, created_at, id);
CREATE INDEX api_keys_changed ON api_keys (changed_at);

-- Every user token issued (not the token itself: its id, the `jti` claim), so
-- one token, or all of a user's, can be revoked before it expires.
CREATE TABLE user_tokens (
  id          uuid PRIMARY KEY,
  tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id     text NOT NULL,
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_tokens_user ON user_tokens (tenant_id, user_id) WHERE revoked_at IS NULL;
CREATE INDEX user_tokens_revoked ON user_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX user_tokens_expiry ON user_tokens (expires_at);

-- What the per-user hold quotas read: a user's live holds, and their holds of the last window.
CREATE INDEX holds_owner_live ON holds (tenant_id, owner_id) WHERE status = 'held' AND owner_id IS NOT NULL;
CREATE INDEX holds_owner ON holds (tenant_id, owner_id, created_at) WHERE owner_id IS NOT NULL;
