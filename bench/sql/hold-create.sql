-- P1's design overhead: the statement Slotwise runs to create one hold, as a
-- `-M prepared` statement, each on a distinct slot: the one statement that
-- checks the resources' versions, takes the seats and writes the hold and its
-- event as a logical message (migration 006's create_hold_fast), its own
-- transaction, as the server sends it. (The server reads the resources first
-- only when it does not remember them: its first holds after a start or a
-- change of the resources.)
--
-- Copied from what the server sends (the bench compares them with a capture
-- of the server's own statements, modulo parameter numbering, and refuses to
-- run if they differ). pgbench variables are numbers, so a transaction's slot
-- (resource, window as Postgres array literals) is read from bench_input
-- first; that lookup is the only statement the server does not run.
-- Variables from -D: k=0, clients, tenant, owner, seats, ttl, data, pass_ppm.
\set k :k + 1
\set idx :client_id + :clients * :k
SELECT rids, froms, tos, start_at, end_at, slot_ids, versions FROM bench_input WHERE n = :idx \gset
-- holdRepository.createFast
SELECT * FROM create_hold_fast(:tenant, :owner, :rids, :versions, :start_at, :end_at, :seats, :ttl, :data);
-- Nothing else runs per hold: the feed decoder stores events in batches, off
-- the request path (docs/architecture.md), and is not part of this script.
