-- Booking core: tenants, credentials, resources, schedules, slots, holds, bookings, outbox.

CREATE TABLE tenants (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  key_hash    bytea NOT NULL UNIQUE,
  prefix      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- Node-independent settings (generated JWT secret, development credentials).
CREATE TABLE settings (
  key    text PRIMARY KEY,
  value  jsonb NOT NULL
);

CREATE TABLE resources (
  id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id              uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  parent_id              uuid REFERENCES resources(id),
  name                   text NOT NULL,
  kind                   text NOT NULL,
  capacity               int NOT NULL CHECK (capacity >= 1),
  timezone               text NOT NULL,
  slot_minutes           int NOT NULL CHECK (slot_minutes BETWEEN 5 AND 1440 AND 1440 % slot_minutes = 0),
  min_notice_minutes     int NOT NULL DEFAULT 0,
  max_advance_days       int NOT NULL DEFAULT 365,
  buffer_before_minutes  int NOT NULL DEFAULT 0,
  buffer_after_minutes   int NOT NULL DEFAULT 0,
  metadata               jsonb NOT NULL DEFAULT '{}',
  version                int NOT NULL DEFAULT 1,
  archived_at            timestamptz,
  -- Millisecond precision so keyset cursors (JSON numbers) compare exactly.
  created_at             timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX resources_tenant_page ON resources (tenant_id, created_at, id);
CREATE INDEX resources_parent ON resources (parent_id);

CREATE TABLE schedules (
  resource_id   uuid PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
  tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  timezone      text NOT NULL,
  weekly        jsonb NOT NULL,
  overrides     jsonb NOT NULL,
  version       int NOT NULL DEFAULT 1,
  -- Slots exist up to here; the horizon worker (hourly check) moves it forward a day at a time.
  generated_to  timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE blocks (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  resource_id  uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
  start_at     timestamptz NOT NULL,
  end_at       timestamptz NOT NULL,
  reason       text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  CHECK (end_at > start_at)
);
CREATE INDEX blocks_resource ON blocks (resource_id, start_at);

-- One row per generated slot. seats_taken counts live holds plus confirmed
-- bookings; the CHECK makes overselling impossible whatever the code does.
CREATE TABLE slots (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  resource_id  uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
  start_at     timestamptz NOT NULL,
  end_at       timestamptz NOT NULL,
  capacity     int NOT NULL,
  seats_taken  int NOT NULL DEFAULT 0,
  blocked      boolean NOT NULL DEFAULT false,
  CONSTRAINT slot_no_oversell CHECK (seats_taken >= 0 AND seats_taken <= capacity),
  CONSTRAINT slot_range CHECK (end_at > start_at),
  CONSTRAINT slot_unique UNIQUE (resource_id, start_at)
);

CREATE TABLE holds (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  owner_id    text,
  start_at    timestamptz NOT NULL,
  end_at      timestamptz NOT NULL,
  seats       int NOT NULL CHECK (seats >= 1),
  status      text NOT NULL CHECK (status IN ('held', 'confirmed', 'released', 'expired')),
  expires_at  timestamptz NOT NULL,
  booking_id  uuid,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX holds_due ON holds (expires_at) WHERE status = 'held';
CREATE INDEX holds_tenant ON holds (tenant_id, created_at);

CREATE TABLE hold_resources (
  hold_id      uuid NOT NULL REFERENCES holds(id) ON DELETE CASCADE,
  resource_id  uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
  PRIMARY KEY (hold_id, resource_id)
);
CREATE INDEX hold_resources_resource ON hold_resources (resource_id);

CREATE TABLE bookings (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  hold_id        uuid UNIQUE REFERENCES holds(id),
  owner_id       text,
  start_at       timestamptz NOT NULL,
  end_at         timestamptz NOT NULL,
  seats          int NOT NULL CHECK (seats >= 1),
  status         text NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
  customer       jsonb NOT NULL,
  attendees      jsonb NOT NULL DEFAULT '[]',
  metadata       jsonb NOT NULL DEFAULT '{}',
  version        int NOT NULL DEFAULT 1,
  cancel_reason  text,
  created_at     timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bookings_tenant_page ON bookings (tenant_id, created_at, id);
CREATE INDEX bookings_range ON bookings (tenant_id, start_at);

CREATE TABLE booking_resources (
  booking_id   uuid NOT NULL REFERENCES bookings(id) ON DELETE CASCADE,
  resource_id  uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
  PRIMARY KEY (booking_id, resource_id)
);
CREATE INDEX booking_resources_resource ON booking_resources (resource_id, booking_id);

-- The outbox. Rows are written with seq NULL in the transaction that made the
-- change; the sequencer numbers committed rows in commit order (see
-- sequence_events), so a reader that has seen seq N never later finds a smaller one.
CREATE TABLE events (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  seq           bigint UNIQUE,
  tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  type          text NOT NULL,
  resource_ids  uuid[] NOT NULL,
  data          jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz
);
CREATE INDEX events_unsequenced ON events (id) WHERE seq IS NULL;
CREATE INDEX events_tenant_seq ON events (tenant_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX events_unpublished ON events (seq) WHERE seq IS NOT NULL AND published_at IS NULL;

CREATE TABLE event_counter (
  id        boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_seq  bigint NOT NULL
);
INSERT INTO event_counter (id, last_seq) VALUES (true, 0);

-- Numbers every committed, unnumbered event. The advisory lock makes one
-- sequencer run at a time across all nodes; each statement in a volatile
-- function sees everything committed before it started.
CREATE FUNCTION sequence_events(max_rows int) RETURNS SETOF events
LANGUAGE plpgsql AS $$
DECLARE
  last bigint;
  n bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(7261001);
  SELECT last_seq INTO last FROM event_counter WHERE id;
  RETURN QUERY
    WITH pending AS (
      SELECT e.id, last + row_number() OVER (ORDER BY e.id) AS new_seq
      FROM events e WHERE e.seq IS NULL ORDER BY e.id LIMIT max_rows
    )
    UPDATE events e SET seq = p.new_seq FROM pending p WHERE e.id = p.id RETURNING e.*;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    UPDATE event_counter SET last_seq = last + n WHERE id;
  END IF;
END;
$$;

CREATE TABLE idempotency_keys (
  scope        text NOT NULL,
  key          text NOT NULL,
  fingerprint  text NOT NULL,
  status       int,
  headers      jsonb,
  body         text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
