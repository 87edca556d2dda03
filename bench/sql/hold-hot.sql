-- P2's SQL limit: the statements Slotwise runs for a hold on one hot slot,
-- every request on the same slot: the resources read, then the one statement
-- (migration 003's create_hold_fast) that locks the slot and takes a seat, or
-- answers 'conflict' and writes nothing when none is left, as the server does.
-- Variables from -D: tenant, owner, seats, ttl, data, pass_ppm, and the hot
-- slot as Postgres array literals: rids, froms, tos, start_at, end_at.
-- resourceRepository.byIds
SELECT id, tenant_id, parent_id, name, kind, capacity, timezone, slot_minutes, min_notice_minutes, max_advance_days,
  buffer_before_minutes, buffer_after_minutes, metadata, version, archived_at, created_at, updated_at FROM resources WHERE tenant_id = :tenant AND id = ANY(:rids::uuid[]) ORDER BY id ;
-- holdRepository.createFast
SELECT * FROM create_hold_fast(:tenant, :owner, :rids, :start_at, :end_at, :seats, :ttl, :data);
-- The outbox pass, for pass_ppm per million requests (the server's rate per
-- request, refused ones included, in the same run).
\set r random(1, 1000000)
\if :r <= :pass_ppm
SELECT coalesce(array_agg(seq), '{}') AS seqs FROM sequence_events(1000) \gset
SELECT DISTINCT s.id, s.resource_id, s.start_at, s.end_at, s.capacity, s.seats_taken, s.blocked
       FROM slots s JOIN unnest(:rids::uuid[], :froms::timestamptz[], :tos::timestamptz[]) AS w(resource_id, from_at, to_at)
         ON s.resource_id = w.resource_id AND s.start_at < w.to_at AND s.end_at > w.from_at AND s.start_at > w.from_at - interval '1 day'
       ORDER BY s.resource_id, s.start_at;
UPDATE events SET published_at = now() WHERE seq = ANY(:seqs::bigint[]);
\endif
