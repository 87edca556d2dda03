-- The fast paths without their duplicates. The server always passes the
-- resources' versions (server/db/repositories/holds.ts and bookings.ts), so
-- migration 005's overloads without them are never called and go; the
-- version check that migration 006 wrote into both remaining functions is one
-- plpgsql function, fast_path_versions_current, which both call first.
--
-- The helper is plpgsql, not SQL: plpgsql keeps the plan of its query for the
-- connection, where a SQL-language function called from plpgsql is planned
-- again on every call (migration 006's note). pgbench of
-- bench/sql/hold-create.sql showed no cost against migration 006's functions
-- (docs/benchmarks.md, "P1 — node CPU per hold").

DROP FUNCTION create_hold_fast(uuid, text, uuid[], timestamptz, timestamptz, int, int, text[]);
DROP FUNCTION create_booking_fast(uuid, text, uuid[], timestamptz, timestamptz, int, jsonb, jsonb, jsonb, text[]);

-- True when every one of p_resources (sorted, each once) belongs to p_tenant,
-- is live and is at the version at the same place in p_versions. The fast
-- paths answer 'fallback', having written nothing, when it is not: the general
-- path then reads the resources afresh and decides (and words) the request
-- (migration 006's note). Every change of a resource row bumps its version.
CREATE FUNCTION fast_path_versions_current(p_tenant uuid, p_resources uuid[], p_versions int[])
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN cardinality(p_versions) IS NOT DISTINCT FROM cardinality(p_resources) AND cardinality(p_resources) = (
    SELECT count(*) FROM unnest(p_resources, p_versions) AS v(id, version) JOIN resources r ON r.id = v.id
    WHERE r.tenant_id = p_tenant AND r.version = v.version AND r.archived_at IS NULL);
END;
$$;

CREATE OR REPLACE FUNCTION create_hold_fast(p_tenant uuid, p_owner text, p_resources uuid[], p_versions int[], p_start timestamptz, p_end timestamptz,
  p_seats int, p_ttl int, p_message text[],
  OUT o_status text, OUT o_conflicts jsonb, OUT o_id uuid, OUT o_created_at timestamptz, OUT o_expires_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  taken text;
BEGIN
  IF NOT fast_path_versions_current(p_tenant, p_resources, p_versions) THEN
    o_status := 'fallback';
    RETURN;
  END IF;
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

CREATE OR REPLACE FUNCTION create_booking_fast(p_tenant uuid, p_owner text, p_resources uuid[], p_versions int[], p_start timestamptz, p_end timestamptz,
  p_seats int, p_customer jsonb, p_attendees jsonb, p_metadata jsonb, p_message text[],
  OUT o_status text, OUT o_conflicts jsonb, OUT o_id uuid, OUT o_created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  taken text;
BEGIN
  IF NOT fast_path_versions_current(p_tenant, p_resources, p_versions) THEN
    o_status := 'fallback';
    RETURN;
  END IF;
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
