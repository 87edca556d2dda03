-- Calendar feeds (docs/integrations.md#calendar-feeds): subscription URLs for a
-- resource's bookings or a user's, authorized by a token in the query string
-- because calendar apps cannot send headers. Only the token's SHA-256 is kept;
-- revoking a feed deletes its row, and its URL answers 401 from then on.

CREATE TABLE calendar_feeds (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  -- Exactly one of the two: the resource's feed, or the user's (the bookings they made).
  resource_id  uuid REFERENCES resources(id) ON DELETE CASCADE,
  user_id      text,
  -- The zone of a user feed's times (a resource feed uses the resource's).
  timezone     text NOT NULL DEFAULT 'UTC',
  token_hash   bytea NOT NULL UNIQUE,
  -- Who made it: 'key:<api key id>' or 'user:<user id>'.
  created_by   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  CHECK ((resource_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX calendar_feeds_tenant_page ON calendar_feeds (tenant_id, created_at, id);

-- A user feed reads the user's bookings by start; bookings had no index by owner.
CREATE INDEX bookings_owner_range ON bookings (tenant_id, owner_id, start_at) WHERE owner_id IS NOT NULL;
