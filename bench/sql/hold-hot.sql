-- P2's SQL limit: the statements Slotwise runs for a hold on one hot slot,
-- every request on the same slot: the resources read, then the one statement
-- (migration 005's create_hold_fast) that locks the slot and takes a seat, or
-- answers 'conflict' and writes nothing when none is left, as the server does.
-- Variables from -D: tenant, owner, seats, ttl, data, pass_ppm, and the hot
-- slot as Postgres array literals: rids, froms, tos, start_at, end_at.
-- resourceRepository.byIds
SELECT id, tenant_id, parent_id, name, kind, capacity, timezone, slot_minutes, min_notice_minutes, max_advance_days,
  buffer_before_minutes, buffer_after_minutes, metadata, version, archived_at, created_at, updated_at FROM resources WHERE tenant_id = :tenant AND id = ANY(:rids::uuid[]) ORDER BY id ;
-- holdRepository.createFast
SELECT * FROM create_hold_fast(:tenant, :owner, :rids, :start_at, :end_at, :seats, :ttl, :data);
-- Nothing else runs per hold: the feed decoder stores events in batches, off
-- the request path (docs/architecture.md), and is not part of this script.
