-- P1's SQL limit: the statements Slotwise runs to create one hold, in order,
-- as `-M prepared` statements, each on a distinct slot: the resources read,
-- then the one statement that takes the seats and writes the hold and its
-- event (migration 003's create_hold_fast), each its own transaction, as the
-- server sends them.
--
-- Copied from what the server sends (the bench compares them with a capture
-- of the server's own statements, modulo parameter numbering, and refuses to
-- run if they differ). pgbench variables are numbers, so a transaction's slot
-- (resource, window as Postgres array literals) is read from bench_input
-- first; that lookup is the only statement the server does not run.
-- Variables from -D: k=0, clients, tenant, owner, seats, ttl, data, pass_ppm.
\set k :k + 1
\set idx :client_id + :clients * :k
SELECT rids, froms, tos, start_at, end_at, slot_ids FROM bench_input WHERE n = :idx \gset
-- resourceRepository.byIds
SELECT id, tenant_id, parent_id, name, kind, capacity, timezone, slot_minutes, min_notice_minutes, max_advance_days,
  buffer_before_minutes, buffer_after_minutes, metadata, version, archived_at, created_at, updated_at FROM resources WHERE tenant_id = :tenant AND id = ANY(:rids::uuid[]) ORDER BY id ;
-- holdRepository.createFast
SELECT * FROM create_hold_fast(:tenant, :owner, :rids, :start_at, :end_at, :seats, :ttl, :data);
-- The outbox pass that follows commits (shared by concurrent commits, so it
-- runs for pass_ppm per million holds, the rate the server showed in the
-- same run): number the events, read the slots for availability.changed,
-- mark them published. array_agg hands the numbers to the last statement.
\set r random(1, 1000000)
\if :r <= :pass_ppm
SELECT coalesce(array_agg(seq), '{}') AS seqs FROM sequence_events(1000) \gset
SELECT DISTINCT s.id, s.resource_id, s.start_at, s.end_at, s.capacity, s.seats_taken, s.blocked
       FROM slots s JOIN unnest(:rids::uuid[], :froms::timestamptz[], :tos::timestamptz[]) AS w(resource_id, from_at, to_at)
         ON s.resource_id = w.resource_id AND s.start_at < w.to_at AND s.end_at > w.from_at AND s.start_at > w.from_at - interval '1 day'
       ORDER BY s.resource_id, s.start_at;
UPDATE events SET published_at = now() WHERE seq = ANY(:seqs::bigint[]);
\endif
