-- The event feed by logical decoding. A changing transaction no longer writes
-- an events row: it writes a transactional logical message
-- (pg_logical_emit_message(true, 'slotwise', …)) into the WAL, which costs no
-- table write, no index entry and no lock. One feed decoder per database
-- (whichever node holds the replication slot) reads the messages in commit
-- order, numbers them and stores them in `events` in one batch per group of
-- commits, then hands them to every consumer. Nothing on the request path
-- waits for a numbering pass or a cluster-wide lock, and a transaction that
-- stays open holds back nobody else's events (commit order, not start order).
-- server/db/feed.ts is the decoder; docs/architecture.md draws the spine.

-- Events a node committed under the old outbox but never numbered (it died
-- first) are numbered now, so every row has its place.
SELECT count(*) FROM sequence_events(2147483647);
DELETE FROM events WHERE seq IS NULL;
DROP FUNCTION sequence_events(int);
DROP INDEX events_unsequenced;
DROP INDEX events_unpublished;
ALTER TABLE events DROP COLUMN published_at;
ALTER TABLE events ALTER COLUMN seq SET NOT NULL;
-- The seats each event left on the slots it changed, as
-- [[resourceId, startMs, endMs, capacity, remaining], …] (availability.changed
-- is built from them, on any node, without reading the slots again), and for
-- each of resource_ids the seq of the previous event naming that resource (0:
-- none), so a live subscriber can tell that it missed one.
ALTER TABLE events ADD COLUMN slots jsonb NOT NULL DEFAULT '[]';
ALTER TABLE events ADD COLUMN prev_seqs bigint[] NOT NULL DEFAULT '{}';
-- Rows are written by the decoder with their seq: the insertion id goes.
-- Nor may a row be refused for its tenant: the change it records is
-- committed, and the decoder must store it whatever happened since.
ALTER TABLE events DROP COLUMN id;
ALTER TABLE events DROP CONSTRAINT events_tenant_id_fkey;
DROP INDEX events_tenant_seq;
CREATE INDEX events_tenant_seq ON events (tenant_id, seq);

-- Where the decoder stands: the end LSN of the last transaction stored, the
-- last seq given, and the last seq handed to the live fan-out. The decoder
-- checks `last_seq` before each batch (under FOR UPDATE): a decoder that lost
-- its slot and comes back with a stale batch stores nothing.
CREATE TABLE feed_cursor (
  id           boolean PRIMARY KEY DEFAULT true CHECK (id),
  lsn          pg_lsn NOT NULL,
  last_seq     bigint NOT NULL,
  emitted_seq  bigint NOT NULL
);
INSERT INTO feed_cursor (id, lsn, last_seq, emitted_seq)
SELECT true, '0/0', coalesce(max(seq), 0), coalesce(max(seq), 0) FROM events;
DROP TABLE event_counter;

-- The last seq that named each resource (the `prev_seqs` of the next one).
CREATE TABLE feed_resource_heads (
  resource_id  uuid PRIMARY KEY,
  seq          bigint NOT NULL
);
INSERT INTO feed_resource_heads (resource_id, seq)
SELECT r, max(seq) FROM events, unnest(resource_ids) AS r GROUP BY r;

-- pgoutput needs a publication to stream from; the feed wants only the
-- logical messages, so it publishes no table.
CREATE PUBLICATION slotwise_feed;

-- One slot as the feed reads it: [resourceId, startMs, endMs, capacity, remaining].
CREATE FUNCTION feed_slot(resource_id uuid, start_at timestamptz, end_at timestamptz, capacity int, seats_taken int, blocked boolean)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT '["' || resource_id || '",' || (extract(epoch FROM start_at) * 1000)::bigint || ',' || (extract(epoch FROM end_at) * 1000)::bigint
    || ',' || capacity || ',' || CASE WHEN blocked THEN 0 ELSE capacity - seats_taken END || ']'
$$;

-- The fast paths of migration 003, writing the event as a logical message
-- and reporting the seats they left (o_slots, feed_slot's rows joined by commas).
DROP FUNCTION create_hold_fast(uuid, text, uuid[], timestamptz, timestamptz, int, int, jsonb);
DROP FUNCTION create_booking_fast(uuid, text, uuid[], timestamptz, timestamptz, int, jsonb, jsonb, jsonb, jsonb);
DROP FUNCTION take_seats_fast(uuid, uuid[], timestamptz, timestamptz, int);

CREATE FUNCTION take_seats_fast(p_tenant uuid, p_resources uuid[], p_start timestamptz, p_end timestamptz, p_seats int,
  OUT o_status text, OUT o_conflicts jsonb, OUT o_slots text)
LANGUAGE plpgsql AS $$
DECLARE
  s record;
  cur uuid;
  next_start timestamptz;
  covered int := 0;
  targets bigint[] := '{}';
BEGIN
  o_conflicts := '[]';
  IF EXISTS (
    SELECT 1 FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id
    WHERE h.status = 'held' AND h.expires_at <= now() AND hr.resource_id = ANY (p_resources)
      AND h.start_at < p_end AND h.end_at > p_start
  ) THEN
    o_status := 'fallback';
    RETURN;
  END IF;
  FOR s IN
    SELECT sl.id, sl.resource_id, sl.start_at, sl.end_at, sl.capacity, sl.seats_taken, sl.blocked
    FROM slots sl
    WHERE sl.tenant_id = p_tenant AND sl.resource_id = ANY (p_resources)
      AND sl.start_at < p_end AND sl.end_at > p_start AND sl.start_at > p_start - interval '1 day'
    ORDER BY sl.resource_id, sl.start_at
    FOR UPDATE
  LOOP
    -- A slot reaching into the range from before it is locked, never a target.
    CONTINUE WHEN s.start_at < p_start;
    IF cur IS DISTINCT FROM s.resource_id THEN
      IF cur IS NOT NULL AND next_start <> p_end THEN
        o_status := 'fallback';
        RETURN;
      END IF;
      cur := s.resource_id;
      next_start := p_start;
      covered := covered + 1;
    END IF;
    IF s.start_at <> next_start THEN
      o_status := 'fallback';
      RETURN;
    END IF;
    next_start := s.end_at;
    IF s.blocked OR s.capacity - s.seats_taken < p_seats THEN
      o_conflicts := o_conflicts || jsonb_build_object(
        'resourceId', s.resource_id, 'start', iso_ms(s.start_at), 'end', iso_ms(s.end_at),
        'remaining', CASE WHEN s.blocked THEN 0 ELSE s.capacity - s.seats_taken END,
        'reason', CASE WHEN s.blocked THEN 'blocked' ELSE 'full' END);
    END IF;
    targets := targets || s.id;
  END LOOP;
  IF cur IS NULL OR next_start <> p_end OR covered <> cardinality(p_resources) THEN
    o_status := 'fallback';
    RETURN;
  END IF;
  IF jsonb_array_length(o_conflicts) > 0 THEN
    o_status := 'conflict';
    RETURN;
  END IF;
  WITH taken AS (
    UPDATE slots SET seats_taken = seats_taken + p_seats WHERE id = ANY (targets)
    RETURNING resource_id, start_at, end_at, capacity, seats_taken, blocked
  )
  SELECT string_agg(feed_slot(resource_id, start_at, end_at, capacity, seats_taken, blocked), ',') INTO o_slots FROM taken;
  o_status := 'ok';
END;
$$;

-- A hold in one statement: seats, the hold, its resources and its
-- hold.created message. p_message is the message's JSON text cut where the
-- hold's id, expiresAt and createdAt and the slots go, in that order (five
-- parts; server/db/repositories/events.ts's messageParts cuts it).
CREATE FUNCTION create_hold_fast(p_tenant uuid, p_owner text, p_resources uuid[], p_start timestamptz, p_end timestamptz,
  p_seats int, p_ttl int, p_message text[],
  OUT o_status text, OUT o_conflicts jsonb, OUT o_id uuid, OUT o_created_at timestamptz, OUT o_expires_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  taken text;
BEGIN
  SELECT t.o_status, t.o_conflicts, t.o_slots INTO o_status, o_conflicts, taken FROM take_seats_fast(p_tenant, p_resources, p_start, p_end, p_seats) t;
  IF o_status <> 'ok' THEN
    RETURN;
  END IF;
  o_created_at := date_trunc('milliseconds', now());
  o_expires_at := o_created_at + make_interval(secs => p_ttl);
  INSERT INTO holds (tenant_id, owner_id, start_at, end_at, seats, status, expires_at, created_at, updated_at)
  VALUES (p_tenant, p_owner, p_start, p_end, p_seats, 'held', o_expires_at, o_created_at, o_created_at)
  RETURNING id INTO o_id;
  INSERT INTO hold_resources (hold_id, resource_id) SELECT o_id, r FROM unnest(p_resources) AS r;
  PERFORM pg_logical_emit_message(true, 'slotwise',
    p_message[1] || '"' || o_id || '"' || p_message[2] || '"' || iso_ms(o_expires_at) || '"' || p_message[3]
    || '"' || iso_ms(o_created_at) || '"' || p_message[4] || '[' || taken || ']' || p_message[5]);
END;
$$;

-- A direct booking in one statement: seats, the booking, its resources and
-- its booking.confirmed message. p_message is the message's JSON text cut
-- where the booking's id, createdAt and updatedAt and the slots go.
CREATE FUNCTION create_booking_fast(p_tenant uuid, p_owner text, p_resources uuid[], p_start timestamptz, p_end timestamptz,
  p_seats int, p_customer jsonb, p_attendees jsonb, p_metadata jsonb, p_message text[],
  OUT o_status text, OUT o_conflicts jsonb, OUT o_id uuid, OUT o_created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  taken text;
BEGIN
  SELECT t.o_status, t.o_conflicts, t.o_slots INTO o_status, o_conflicts, taken FROM take_seats_fast(p_tenant, p_resources, p_start, p_end, p_seats) t;
  IF o_status <> 'ok' THEN
    RETURN;
  END IF;
  o_created_at := date_trunc('milliseconds', now());
  INSERT INTO bookings (tenant_id, hold_id, owner_id, start_at, end_at, seats, status, customer, attendees, metadata, created_at, updated_at)
  VALUES (p_tenant, NULL, p_owner, p_start, p_end, p_seats, 'confirmed', p_customer, p_attendees, p_metadata, o_created_at, o_created_at)
  RETURNING id INTO o_id;
  INSERT INTO booking_resources (booking_id, resource_id) SELECT o_id, r FROM unnest(p_resources) AS r;
  PERFORM pg_logical_emit_message(true, 'slotwise',
    p_message[1] || '"' || o_id || '"' || p_message[2] || '"' || iso_ms(o_created_at) || '"' || p_message[3]
    || '"' || iso_ms(o_created_at) || '"' || p_message[4] || '[' || taken || ']' || p_message[5]);
END;
$$;
