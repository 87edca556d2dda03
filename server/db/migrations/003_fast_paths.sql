-- One-statement fast paths for the two hottest writes: creating a hold and
-- booking directly. The general path (server/core/services/seats.ts) costs
-- eight round trips inside BEGIN/COMMIT; a plain request (no buffers, no
-- expired hold to reclaim, no seats to give back) needs none of its branches,
-- so these functions do its work in one statement, which is its own
-- transaction. Whenever a request is not plain, or its slots do not tile the
-- range exactly, they write nothing and answer 'fallback', and the server runs
-- the general path, which also words every error. The decisions mirror
-- rules.ts's evaluateSeats; test/integration/fast-path.test.ts runs both paths
-- on the same requests and compares.

-- An instant as JavaScript's Date#toISOString writes it (millisecond precision, Z).
CREATE FUNCTION iso_ms(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- Takes p_seats on every resource over [p_start, p_end), locking exactly the
-- slots slotRepository.lock locks for such a request, in the same global order
-- (resource, start), so it cannot deadlock with the general path.
--   'ok'        the seats are taken;
--   'conflict'  nothing written; o_conflicts lists the blocked or full slots
--               (the shape of rules.ts's Conflict);
--   'fallback'  nothing written: an expired hold overlaps (the general path
--               reclaims it), or some resource's slots do not tile the range.
-- The caller has checked that no resource has buffers.
CREATE FUNCTION take_seats_fast(p_tenant uuid, p_resources uuid[], p_start timestamptz, p_end timestamptz, p_seats int,
  OUT o_status text, OUT o_conflicts jsonb)
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
  UPDATE slots SET seats_taken = seats_taken + p_seats WHERE id = ANY (targets);
  o_status := 'ok';
END;
$$;

-- A hold in one statement: seats, the hold, its resources and its
-- hold.created event. p_event is the event's data with the hold's id,
-- createdAt and expiresAt left for this function to fill in. p_resources is
-- sorted (the order holdRepository stores and reports).
CREATE FUNCTION create_hold_fast(p_tenant uuid, p_owner text, p_resources uuid[], p_start timestamptz, p_end timestamptz,
  p_seats int, p_ttl int, p_event jsonb,
  OUT o_status text, OUT o_conflicts jsonb, OUT o_id uuid, OUT o_created_at timestamptz, OUT o_expires_at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
  SELECT t.o_status, t.o_conflicts INTO o_status, o_conflicts FROM take_seats_fast(p_tenant, p_resources, p_start, p_end, p_seats) t;
  IF o_status <> 'ok' THEN
    RETURN;
  END IF;
  o_created_at := date_trunc('milliseconds', now());
  o_expires_at := o_created_at + make_interval(secs => p_ttl);
  INSERT INTO holds (tenant_id, owner_id, start_at, end_at, seats, status, expires_at, created_at, updated_at)
  VALUES (p_tenant, p_owner, p_start, p_end, p_seats, 'held', o_expires_at, o_created_at, o_created_at)
  RETURNING id INTO o_id;
  INSERT INTO hold_resources (hold_id, resource_id) SELECT o_id, r FROM unnest(p_resources) AS r;
  INSERT INTO events (tenant_id, type, resource_ids, data)
  VALUES (p_tenant, 'hold.created', p_resources,
    jsonb_set(jsonb_set(jsonb_set(p_event,
      '{hold,id}', to_jsonb(o_id)),
      '{hold,createdAt}', to_jsonb(iso_ms(o_created_at))),
      '{hold,expiresAt}', to_jsonb(iso_ms(o_expires_at))));
END;
$$;

-- A direct booking in one statement: seats, the booking, its resources and
-- its booking.confirmed event. p_event is the event's data with the booking's
-- id, createdAt and updatedAt left for this function to fill in.
CREATE FUNCTION create_booking_fast(p_tenant uuid, p_owner text, p_resources uuid[], p_start timestamptz, p_end timestamptz,
  p_seats int, p_customer jsonb, p_attendees jsonb, p_metadata jsonb, p_event jsonb,
  OUT o_status text, OUT o_conflicts jsonb, OUT o_id uuid, OUT o_created_at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
  SELECT t.o_status, t.o_conflicts INTO o_status, o_conflicts FROM take_seats_fast(p_tenant, p_resources, p_start, p_end, p_seats) t;
  IF o_status <> 'ok' THEN
    RETURN;
  END IF;
  o_created_at := date_trunc('milliseconds', now());
  INSERT INTO bookings (tenant_id, hold_id, owner_id, start_at, end_at, seats, status, customer, attendees, metadata, created_at, updated_at)
  VALUES (p_tenant, NULL, p_owner, p_start, p_end, p_seats, 'confirmed', p_customer, p_attendees, p_metadata, o_created_at, o_created_at)
  RETURNING id INTO o_id;
  INSERT INTO booking_resources (booking_id, resource_id) SELECT o_id, r FROM unnest(p_resources) AS r;
  INSERT INTO events (tenant_id, type, resource_ids, data)
  VALUES (p_tenant, 'booking.confirmed', p_resources,
    jsonb_set(jsonb_set(jsonb_set(p_event,
      '{booking,id}', to_jsonb(o_id)),
      '{booking,createdAt}', to_jsonb(iso_ms(o_created_at))),
      '{booking,updatedAt}', to_jsonb(iso_ms(o_created_at))));
END;
$$;
