-- P1's SQL limit: the statements Slotwise runs to create one hold, in order,
-- as `-M prepared` statements, each on a distinct slot: the resources read,
-- then the one statement that takes the seats and writes the hold and its
-- event as a logical message (migration 005's create_hold_fast), each its own transaction, as the
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
-- Nothing else runs per hold: the feed decoder stores events in batches, off
-- the request path (docs/architecture.md), and is not part of this script.
