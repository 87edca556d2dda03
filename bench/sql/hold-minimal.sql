-- P1's SQL limit, the minimal hold transaction (PRODUCT.md §7): the floor any
-- correct design pays for one hold. In one transaction: take a seat with a
-- conditional slot-counter UPDATE, insert the hold (with its hold_resources
-- row: holds has no resource column), insert its hold.created event (the
-- hold's real event body, about 300 bytes of jsonb).
--
-- It runs on bench_min_*, scratch copies of slots, holds, hold_resources and
-- events made by the bench (CREATE TABLE ... (LIKE ... INCLUDING ALL), plus
-- the same foreign keys), so the running Slotwise nodes never see, number or
-- deliver these events, and every transaction takes a distinct fresh slot of
-- a pool made for it: slot `first + permute(n, pool)` for the n-th
-- transaction of the run, a pseudo-random spread so that concurrent clients
-- do not all write one heap page. A slot that is already full makes the
-- UPDATE return no row and pgbench abort the run (the pool was too small).
-- Variables from -D: k=0, clients, first, pool, tenant, owner, seats, ttl, event
-- (the event's JSON; `seq` comes from a sequence, as an outbox's own numbering would).
\set k :k + 1
\set id :first + permute(:client_id + :clients * :k, :pool)
BEGIN;
UPDATE bench_min_slots SET seats_taken = seats_taken + :seats
  WHERE id = :id AND NOT blocked AND seats_taken + :seats <= capacity
  RETURNING resource_id, start_at, end_at \gset
WITH h AS (
  INSERT INTO bench_min_holds (tenant_id, owner_id, start_at, end_at, seats, status, expires_at)
  VALUES (:tenant, :owner, :start_at, :end_at, :seats, 'held', now() + make_interval(secs => :ttl)) RETURNING id
)
INSERT INTO bench_min_hold_resources (hold_id, resource_id) SELECT id, :resource_id::uuid FROM h;
INSERT INTO bench_min_events (seq, tenant_id, type, resource_ids, data) VALUES (nextval('bench_min_event_seq'), :tenant, 'hold.created', ARRAY[:resource_id::uuid], :event);
COMMIT;
