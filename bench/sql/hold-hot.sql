-- P2's SQL limit: the statements Slotwise runs for a hold on one hot slot,
-- every transaction on the same slot. Like the server, it locks the slot,
-- then takes a seat and commits when one is left, else rolls back (the
-- server decides in JavaScript from the locked row; pgbench with \gset).
-- Variables from -D: tenant, owner, seats, ttl, type, data, deltas, pass_ppm,
-- and the hot slot as Postgres array literals: rids, froms, tos, slot_ids,
-- start_at, end_at.
BEGIN;
-- resourceRepository.byIds
SELECT id, tenant_id, parent_id, name, kind, capacity, timezone, slot_minutes, min_notice_minutes, max_advance_days,
  buffer_before_minutes, buffer_after_minutes, metadata, version, archived_at, created_at, updated_at FROM resources WHERE tenant_id = :tenant AND id = ANY(:rids::uuid[]) ORDER BY id ;
-- holdRepository.anyDueNear
SELECT 1 FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id
       WHERE h.status = 'held' AND h.expires_at <= now() AND hr.resource_id = ANY(:rids::uuid[])
         AND h.start_at < :end_at AND h.end_at > :start_at LIMIT 1;
-- slotRepository.lock (the hot row: one slot, so one row for \gset)
SELECT s.id, s.resource_id, s.start_at, s.end_at, s.capacity, s.seats_taken, s.blocked
       FROM slots s JOIN unnest(:rids::uuid[], :froms::timestamptz[], :tos::timestamptz[]) AS w(resource_id, from_at, to_at)
         ON s.resource_id = w.resource_id AND s.start_at < w.to_at AND s.end_at > w.from_at AND s.start_at > w.from_at - interval '1 day'
       WHERE s.tenant_id = :tenant
       ORDER BY s.resource_id, s.start_at
       FOR UPDATE OF s \gset
\if :seats_taken + :seats <= :capacity
-- slotRepository.addSeats
UPDATE slots s SET seats_taken = s.seats_taken + d.delta
       FROM unnest(:slot_ids::bigint[], :deltas::int[]) AS d(id, delta) WHERE s.id = d.id;
-- holdRepository.insert
WITH h AS (
         INSERT INTO holds (tenant_id, owner_id, start_at, end_at, seats, status, expires_at)
         VALUES (:tenant, :owner, :start_at, :end_at, :seats, 'held', now() + make_interval(secs => :ttl)) RETURNING *
       ), hr AS (
         INSERT INTO hold_resources (hold_id, resource_id) SELECT h.id, unnest(:rids::uuid[]) FROM h
       )
       SELECT h.*, :rids::uuid[] AS resource_ids FROM h;
-- eventRepository.append
INSERT INTO events (tenant_id, type, resource_ids, data) VALUES (:tenant, :type, :rids, :data);
COMMIT;
\set r random(1, 1000000)
\if :r <= :pass_ppm
SELECT coalesce(array_agg(seq), '{}') AS seqs FROM sequence_events(1000) \gset
SELECT DISTINCT s.id, s.resource_id, s.start_at, s.end_at, s.capacity, s.seats_taken, s.blocked
       FROM slots s JOIN unnest(:rids::uuid[], :froms::timestamptz[], :tos::timestamptz[]) AS w(resource_id, from_at, to_at)
         ON s.resource_id = w.resource_id AND s.start_at < w.to_at AND s.end_at > w.from_at AND s.start_at > w.from_at - interval '1 day'
       ORDER BY s.resource_id, s.start_at;
UPDATE events SET published_at = now() WHERE seq = ANY(:seqs::bigint[]);
\endif
\else
ROLLBACK;
\endif
