-- The fast paths of migration 005, given the versions of the resources the
-- server checked the request against. A node keeps the resources it read in
-- memory (server/core/services/resource-cache.ts) and checks a request's grid,
-- notice and advance rules against them without reading them again; these
-- overloads take the versions of those rows and answer 'fallback', having
-- written nothing, unless every resource is still live at exactly that
-- version. The general path then reads the resources afresh and decides (and
-- words) the request as before, so a row remembered from before a change is
-- never what a hold or booking is decided by. Every change of a resource row
-- bumps its version (resourceRepository.update); schedules and blocks change
-- slots, which the functions lock and read themselves.
-- The versions come in the order of p_resources (the request's ids, sorted).

CREATE FUNCTION resources_at_versions(p_tenant uuid, p_resources uuid[], p_versions int[])
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT cardinality(p_resources) = cardinality(p_versions) AND cardinality(p_resources) = (
    SELECT count(*) FROM unnest(p_resources, p_versions) AS v(id, version)
    JOIN resources r ON r.id = v.id
    WHERE r.tenant_id = p_tenant AND r.version = v.version AND r.archived_at IS NULL)
$$;

CREATE FUNCTION create_hold_fast(p_tenant uuid, p_owner text, p_resources uuid[], p_versions int[], p_start timestamptz, p_end timestamptz,
  p_seats int, p_ttl int, p_message text[],
  OUT o_status text, OUT o_conflicts jsonb, OUT o_id uuid, OUT o_created_at timestamptz, OUT o_expires_at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT resources_at_versions(p_tenant, p_resources, p_versions) THEN
    o_status := 'fallback';
    RETURN;
  END IF;
  SELECT f.o_status, f.o_conflicts, f.o_id, f.o_created_at, f.o_expires_at INTO o_status, o_conflicts, o_id, o_created_at, o_expires_at
  FROM create_hold_fast(p_tenant, p_owner, p_resources, p_start, p_end, p_seats, p_ttl, p_message) f;
END;
$$;

CREATE FUNCTION create_booking_fast(p_tenant uuid, p_owner text, p_resources uuid[], p_versions int[], p_start timestamptz, p_end timestamptz,
  p_seats int, p_customer jsonb, p_attendees jsonb, p_metadata jsonb, p_message text[],
  OUT o_status text, OUT o_conflicts jsonb, OUT o_id uuid, OUT o_created_at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT resources_at_versions(p_tenant, p_resources, p_versions) THEN
    o_status := 'fallback';
    RETURN;
  END IF;
  SELECT f.o_status, f.o_conflicts, f.o_id, f.o_created_at INTO o_status, o_conflicts, o_id, o_created_at
  FROM create_booking_fast(p_tenant, p_owner, p_resources, p_start, p_end, p_seats, p_customer, p_attendees, p_metadata, p_message) f;
END;
$$;
