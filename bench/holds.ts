/**
 * P1 and P2 share a node of their own; P1's parts are in p1.ts. P2 (500
 * concurrent holds on one slot of capacity N) runs beside pgbench running the
 * server's own statements at the same concurrency on the same database.
 */
import { startNode, type Node } from './lib/cluster';
import { readTrace, ranBetween, type Ctx } from './lib/context';
import { capturedHold, commonVars, openResource, type CapturedHold } from './lib/hold-data';
import { compareWithServer, pgbench } from './lib/pgbench';
import { runWorker, sleep } from './lib/proc';
import { ms, num, percentiles } from './lib/stats';
import { P1_CONNECTIONS, p1Limits, p1Server, type P1Server } from './p1';

const HOUR = 3_600_000;
const P2_REQUESTS = 500;
const P2_CAPACITY = 100;
// The server's pool (64) is what 500 requests reach Postgres through; pgbench gets 50 (500 = 50 × 10).
const P2_PGBENCH_CLIENTS = 50;

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

/**
 * P1 and P2 run against a node of their own whose pool is as large as the
 * load's concurrency (DB_POOL_SIZE=64), so Postgres sees the same number of
 * transactions in flight from the server as from pgbench; it is stopped
 * (its connections closed) before the bare route and pgbench run.
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
  if (p1) await p1Limits(ctx, seeds, p1);
  if (p2) await p2Sql(ctx, seeds, p2);
}

interface P2Server {
  runs: { rate: number; ok: boolean; detail: string; p99: number }[];
  /** Outbox passes per request (refused ones included), as the server ran them. */
  passPpm: number;
  captured: CapturedHold;
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
  const passes = ranBetween(before, await readTrace(node), 'UPDATE feed_cursor SET lsn');
  const passPpm = Math.min(1e6, Math.round((1e6 * passes) / (runs.length * P2_REQUESTS)));
  ctx.log(`  server: ${runs.map((r) => num(r.rate)).join(', ')} holds/s; ${runs[0]!.detail}; feed decoder batches per request ${(passPpm / 1e6).toFixed(3)}`);
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
         start_at::text AS start_at, end_at::text AS end_at, '{' || id || '}' AS slot_ids,
         '{' || (SELECT r.version FROM resources r WHERE r.id = resource_id) || '}' AS versions
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
