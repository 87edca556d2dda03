/**
 * P1 (holds on distinct slots, 64 connections) and P2 (500 concurrent holds
 * on one slot of capacity N), each beside pgbench running the server's own
 * statements at the same concurrency on the same database.
 */
import { must, startNode, type Node } from './lib/cluster';
import { readTrace, ranBetween, type Ctx } from './lib/context';
import { compareWithServer, pgbench } from './lib/pgbench';
import { runWorker, sleep } from './lib/proc';
import { ms, num, percentiles } from './lib/stats';

const FIVE_MIN = 300_000;
const HOUR = 3_600_000;
const P1_CONNECTIONS = 64;
const P2_REQUESTS = 500;
const P2_CAPACITY = 100;
// The server's pool (64) is what 500 requests reach Postgres through; pgbench gets 50 (500 = 50 × 10).
const P2_PGBENCH_CLIENTS = 50;
const EVERY_DAY = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** A capacity-`capacity` resource open around the clock on a `slotMinutes` grid. */
export async function openResource(ctx: Ctx, name: string, capacity: number, slotMinutes: number): Promise<string> {
  const r = await must(ctx.key('POST', '/v1/resources', { name, capacity, timezone: 'UTC', slotMinutes }), 201, 'resource');
  await must(ctx.key('PUT', `/v1/resources/${r.id}/schedule`, { weekly: [{ days: EVERY_DAY, start: '00:00', end: '24:00' }] }), 200, 'schedule');
  return r.id;
}

export interface HoldSeeds {
  serverIds: string[];
  pgbenchIds: string[];
  hotId: string;
}

/** Resources for P1 and P2 (slot generation is the slow part of seeding). */
export async function seedHolds(ctx: Ctx): Promise<HoldSeeds> {
  const ids = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((i) => openResource(ctx, `p1-${i}`, 1, 5)));
  const hotId = await openResource(ctx, 'p2-hot', P2_CAPACITY, 60);
  return { serverIds: ids.slice(0, 4), pgbenchIds: ids.slice(4), hotId };
}

/** The event body a hold writes, at its real size. */
function holdEventData(ctx: Ctx, resourceId: string): string {
  const t = new Date(ctx.baseMs).toISOString();
  return JSON.stringify({
    hold: { id: '00000000-0000-4000-8000-000000000000', status: 'held', resourceIds: [resourceId], start: t, end: t, seats: 1, expiresAt: t, bookingId: null, ownerId: ctx.userId, createdAt: t },
  });
}

function commonVars(ctx: Ctx, resourceId: string, passPpm: number) {
  return { tenant: ctx.tenantId, owner: ctx.userId, seats: 1, ttl: 300, data: holdEventData(ctx, resourceId), pass_ppm: passPpm };
}

/** The server's statements for one hold, from node A's capture. */
async function capturedHold(node: Node) {
  const trace = await readTrace(node);
  // A plain hold takes the one-statement fast path (a refused one runs the same statements and writes nothing).
  const tx = trace.transactions.find((t) => t.end === 'AUTOCOMMIT' && t.statements.some((s) => s.includes('create_hold_fast')));
  if (!tx) throw new Error('no hold was captured on node A');
  return { tx: tx.statements, outside: [...trace.outside.keys()] };
}

/**
 * P1 and P2 run against a node of their own whose pool is as large as the
 * load's concurrency (DB_POOL_SIZE=64), so Postgres sees the same number of
 * transactions in flight from the server as from pgbench; it is stopped
 * (its connections closed) before pgbench runs.
 */
export async function runHolds(ctx: Ctx, seeds: HoldSeeds, which: { p1: boolean; p2: boolean }): Promise<void> {
  const node = await startNode('node-holds', { ...ctx.nodeEnv, DB_POOL_SIZE: String(P1_CONNECTIONS) }, ctx.tmp);
  let p1: P1Server | null = null;
  let p2: P2Server | null = null;
  try {
    if (which.p1) p1 = await p1Server(ctx, node, seeds);
    if (which.p2) p2 = await p2Server(ctx, node, seeds);
  } finally {
    await node.proc.stop();
  }
  await sleep(500);
  if (p1) await p1Sql(ctx, seeds, p1);
  if (p2) await p2Sql(ctx, seeds, p2);
}

interface P1Server {
  result: any;
  passPpm: number;
  captured: Awaited<ReturnType<typeof capturedHold>>;
}

async function p1Server(ctx: Ctx, node: Node, seeds: HoldSeeds): Promise<P1Server> {
  ctx.log(`P1: holds on distinct slots over HTTP (autocannon, ${P1_CONNECTIONS} connections)`);
  const before = await readTrace(node);
  const server = await runWorker<any>('p1-load', 'http-load.ts', {
    url: node.url, connections: P1_CONNECTIONS, warmupS: 3, durationS: 10, kind: 'holds', path: '/v1/holds',
    headers: { authorization: `Bearer ${ctx.userToken}` }, resourceIds: seeds.serverIds, baseMs: ctx.baseMs, slotMs: FIVE_MIN, slotOffset: 0,
  }, 60_000);
  const after = await readTrace(node);
  const passes = ranBetween(before, after, 'UPDATE events SET published_at');
  const passPpm = Math.round((1e6 * passes) / Math.max(1, server.used));
  ctx.log(`  server: ${num(server.okPerSecond)} holds/s, p99 ${ms(server.latency.p99)}, statuses ${JSON.stringify(server.statuses)}; outbox passes per hold ${(passPpm / 1e6).toFixed(3)}`);
  return { result: server, passPpm, captured: await capturedHold(node) };
}

async function p1Sql(ctx: Ctx, seeds: HoldSeeds, { result: server, passPpm, captured: cap }: P1Server): Promise<void> {
  const problems = compareWithServer('hold-create.sql', [cap.tx], cap.outside);
  if (problems.length) throw new Error(`bench/sql/hold-create.sql no longer matches the server:\n${problems.join('\n')}`);
  // pgbench's inputs: every slot of its resources, interleaved so neighbours in n are on different resources.
  await ctx.pool.query('DROP TABLE IF EXISTS bench_input');
  await ctx.pool.query(
    `CREATE TABLE bench_input AS
     SELECT (row_number() OVER (ORDER BY start_at, resource_id))::int AS n, '{' || resource_id || '}' AS rids,
       '{"' || start_at || '"}' AS froms, '{"' || end_at || '"}' AS tos, start_at::text AS start_at, end_at::text AS end_at, '{' || id || '}' AS slot_ids
     FROM slots WHERE resource_id = ANY($1::uuid[]) AND start_at >= $2`,
    [seeds.pgbenchIds, new Date(ctx.baseMs)],
  );
  await ctx.pool.query('ALTER TABLE bench_input ADD PRIMARY KEY (n)');
  await ctx.pool.query('VACUUM ANALYZE bench_input');
  const sql = await pgbench(ctx.db.url, 'hold-create.sql', ['-c', String(P1_CONNECTIONS), '-j', '2', '-T', '10'],
    { k: 0, clients: P1_CONNECTIONS, ...commonVars(ctx, seeds.pgbenchIds[0]!, passPpm) }, 40_000);
  if (sql.aborted || sql.failed) throw new Error(`pgbench hold-create aborted:\n${sql.output}`);
  ctx.log(`  pgbench: ${num(sql.tps)} tps, latency avg ${ms(sql.latencyAvgMs)}`);

  const ratio = server.okPerSecond / sql.tps;
  const ok = server.statuses['201'] === server.requests;
  ctx.rows.push({
    id: 'P1', what: 'holds/s, distinct slots, 64 connections', figure: `${num(server.okPerSecond)}/s`, peer: `pgbench ${num(sql.tps)} tps`,
    ratio: `${ratio.toFixed(2)}×`, target: '≥ 0.5× SQL limit', met: ratio >= 0.5 && ok,
    note: ok ? undefined : `non-201 answers: ${JSON.stringify(server.statuses)}`,
  });
  ctx.rows.push({
    id: 'P1', what: 'hold latency at 64 connections (p50 / p99)', figure: `${ms(server.latency.p50)} / ${ms(server.latency.p99)}`, peer: `pgbench avg ${ms(sql.latencyAvgMs)}`,
    ratio: '', target: 'p99 ≤ 25 ms', met: server.latency.p99 <= 25,
  });
}

interface P2Server {
  runs: { rate: number; ok: boolean; detail: string; p99: number }[];
  /** Outbox passes per request (refused ones included), as the server ran them. */
  passPpm: number;
  captured: Awaited<ReturnType<typeof capturedHold>>;
}

const HOT_DAY = 3 * 86_400_000;
const hotStart = (ctx: Ctx, i: number) => ctx.baseMs + HOT_DAY + i * HOUR;

/** Seats taken on the i-th hot slot, and the live holds over it. */
async function hotSlot(ctx: Ctx, seeds: HoldSeeds, i: number) {
  const { rows } = await ctx.pool.query(
    `SELECT s.seats_taken, s.capacity,
       (SELECT count(*)::int FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id
        WHERE hr.resource_id = s.resource_id AND h.status = 'held' AND h.start_at < s.end_at AND h.end_at > s.start_at) AS held
     FROM slots s WHERE s.resource_id = $1 AND s.start_at = $2`,
    [seeds.hotId, new Date(hotStart(ctx, i))],
  );
  return rows[0] as { seats_taken: number; capacity: number; held: number };
}

async function p2Server(ctx: Ctx, node: Node, seeds: HoldSeeds): Promise<P2Server> {
  ctx.log(`P2: ${P2_REQUESTS} concurrent holds on one slot of capacity ${P2_CAPACITY}`);
  const runs: P2Server['runs'] = [];
  const before = await readTrace(node);
  for (let i = 0; i < 5; i++) {
    ctx.checkDeadline();
    const start = new Date(hotStart(ctx, i)).toISOString();
    const end = new Date(hotStart(ctx, i) + HOUR).toISOString();
    const r = await runWorker<any>('p2-burst', 'burst.ts', {
      url: node.url, token: ctx.userToken, count: P2_REQUESTS, body: { resourceIds: [seeds.hotId], start, end }, timeoutMs: 30_000,
    }, 60_000);
    const s = await hotSlot(ctx, seeds, i);
    const ok = r.statuses['201'] === P2_CAPACITY && r.statuses['409'] === P2_REQUESTS - P2_CAPACITY && s.seats_taken === P2_CAPACITY && s.held === P2_CAPACITY;
    runs.push({ rate: P2_REQUESTS / r.seconds, ok, p99: r.latency.p99, detail: `answers ${JSON.stringify(r.statuses)}, seats_taken ${s.seats_taken}/${s.capacity}, live holds ${s.held}` });
  }
  const passes = ranBetween(before, await readTrace(node), 'UPDATE events SET published_at');
  const passPpm = Math.min(1e6, Math.round((1e6 * passes) / (runs.length * P2_REQUESTS)));
  ctx.log(`  server: ${runs.map((r) => num(r.rate)).join(', ')} holds/s; ${runs[0]!.detail}; outbox passes per request ${(passPpm / 1e6).toFixed(3)}`);
  return { runs, passPpm, captured: await capturedHold(node) };
}

async function p2Sql(ctx: Ctx, seeds: HoldSeeds, { runs, passPpm, captured: cap }: P2Server): Promise<void> {
  const problems = compareWithServer('hold-hot.sql', [cap.tx], cap.outside);
  if (problems.length) throw new Error(`bench/sql/hold-hot.sql no longer matches the server:\n${problems.join('\n')}`);

  const sqlRuns: number[] = [];
  let sqlExact = true;
  for (let i = 5; i < 8; i++) {
    ctx.checkDeadline();
    const { rows } = await ctx.pool.query(
      `SELECT '{' || resource_id || '}' AS rids, '{"' || start_at || '"}' AS froms, '{"' || end_at || '"}' AS tos,
         start_at::text AS start_at, end_at::text AS end_at, '{' || id || '}' AS slot_ids
       FROM slots WHERE resource_id = $1 AND start_at = $2`,
      [seeds.hotId, new Date(hotStart(ctx, i))],
    );
    const sql = await pgbench(ctx.db.url, 'hold-hot.sql', ['-c', String(P2_PGBENCH_CLIENTS), '-j', '2', '-t', String(P2_REQUESTS / P2_PGBENCH_CLIENTS)],
      { ...commonVars(ctx, seeds.hotId, passPpm), ...rows[0] }, 40_000);
    if (sql.aborted || sql.failed) throw new Error(`pgbench hold-hot aborted:\n${sql.output}`);
    sqlRuns.push(sql.tps);
    const s = await hotSlot(ctx, seeds, i);
    sqlExact &&= s.seats_taken === P2_CAPACITY && s.held === P2_CAPACITY;
  }
  ctx.log(`  pgbench: ${sqlRuns.map((t) => num(t)).join(', ')} tps${sqlExact ? '' : ' (its own count was off!)'}`);

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rate = median(runs.map((r) => r.rate));
  const limit = median(sqlRuns);
  const exact = runs.every((r) => r.ok);
  ctx.rows.push({
    id: 'P2', what: `${P2_REQUESTS} concurrent holds, one slot of capacity ${P2_CAPACITY} (×${runs.length})`, figure: exact ? `${P2_CAPACITY} held, 0 oversold, every run` : 'WRONG',
    peer: '', ratio: '', target: 'exactly N succeed, 0 oversold', met: exact, note: exact ? undefined : runs.map((r) => r.detail).join('; '),
  });
  ctx.rows.push({
    id: 'P2', what: 'hot-row holds/s (median of bursts)', figure: `${num(rate)}/s`, peer: `pgbench ${num(limit)} tps (${P2_PGBENCH_CLIENTS} clients)`,
    ratio: `${(rate / limit).toFixed(2)}×`, target: '≥ 0.5× SQL limit', met: rate / limit >= 0.5,
    note: `burst p99 ${ms(percentiles(runs.map((r) => r.p99)).max)}`,
  });
}
