/**
 * P4: commit on node A → Socket.IO client on node B while bookings are
 * offered to node A at 500/s in an open loop (bench/workers/open-loop.ts),
 * beside a bare Socket.IO + Redis fan-out between two processes at the same
 * rate, in the same run; then the same again while an unrelated writing
 * transaction stays open for 3 s. Each booking's commit time is taken on node
 * A (bench/lib/pg-trace.ts) and its arrival on the client, both on
 * CLOCK_MONOTONIC (bench/lib/clock.ts); the client also counts first
 * deliveries that arrive out of `seq` order.
 */
import pg from 'pg';
import { monoMs } from './lib/clock';
import { readTrace, type Ctx, type Row } from './lib/context';
import { describeFeedStages, readFeedStages } from './lib/feed-stages';
import { openResource } from './lib/hold-data';
import { sleep, startWorker } from './lib/proc';
import { ms, num, percentiles, type Percentiles } from './lib/stats';

const RATE = 500;
const WARMUP_S = 2;
const SECONDS = 10;
/** How long the load waits for answers after its last request (an open loop can leave a backlog). */
const DRAIN_S = 30;
/** The unrelated transaction: opened this long into the timed window, held open this long. */
const OPEN_TX_AFTER_S = 3;
const OPEN_TX_S = 3;
/** Deliveries are asynchronous after commit: how long the client keeps listening after the last answer. */
const LISTEN_AFTER_MS = 3_000;
const FIVE_MIN = 300_000;
/** The second run books slots from here on (each run takes 3,000 slots of each resource; the horizon holds 25,920). */
const SECOND_RUN_SLOT_OFFSET = 4_000;

export async function seedLive(ctx: Ctx): Promise<string[]> {
  return Promise.all([1, 2].map((i) => openResource(ctx, `p4-${i}`, 1, 5)));
}

export async function runP4(ctx: Ctx, resourceIds: string[]): Promise<void> {
  ctx.log(`P4: commit on node A → Socket.IO client on node B at ${RATE} bookings/s offered (open loop), beside bare Socket.IO + Redis`);
  const bare = await bareFanout(ctx);
  ctx.log(`  bare Socket.IO + Redis: ${bare.n} events, p50 ${ms(bare.p50)}, p99 ${ms(bare.p99)}`);
  const peer = `bare Socket.IO + Redis ${ms(bare.p50)} / ${ms(bare.p99)}`;
  const target = 'p50 ≤ 3 ms, p99 ≤ 15 ms at 500/s; first deliveries in seq order';

  const quiet = await liveRun(ctx, resourceIds, { name: 'p4', keyPrefix: 'a', slotOffset: 0, openTx: false });
  ctx.rows.push(row(quiet, bare, {
    what: `commit on A → Socket.IO client on B, ${RATE} bookings/s offered (open loop), ${num(quiet.load.okPerSecond)}/s answered (p50 / p99)`, peer, target,
  }));
  ctx.checkDeadline();

  ctx.log(`P4: the same while an unrelated writing transaction stays open for ${OPEN_TX_S} s`);
  const held = await liveRun(ctx, resourceIds, { name: 'p4-open-tx', keyPrefix: 'b', slotOffset: SECOND_RUN_SLOT_OFFSET, openTx: true });
  ctx.rows.push(row(held, bare, {
    what: `the same while an unrelated writing transaction stays open ${OPEN_TX_S} s, ${num(held.load.okPerSecond)}/s answered (p50 / p99)`, peer, target,
  }));
}

/** The peer: two bare Socket.IO processes on the same Redis, a client on one, emits at RATE from the other. */
async function bareFanout(ctx: Ctx): Promise<Percentiles> {
  const emitter = startWorker('bare-sio-emitter', 'bare-sio.ts', { redisUrl: ctx.redisUrl, emitRate: RATE, seconds: SECONDS });
  const relay = startWorker('bare-sio-relay', 'bare-sio.ts', { redisUrl: ctx.redisUrl });
  try {
    await emitter.line('READY', 20_000);
    const { port } = await relay.line<{ port: number }>('READY', 20_000);
    const listener = startWorker('bare-sio-client', 'sio-listener.ts', { mode: 'bare', url: `http://127.0.0.1:${port}`, seconds: SECONDS + 3 });
    await listener.line('READY', 20_000);
    emitter.child.kill('SIGUSR2');
    const { latency } = await listener.line<{ latency: Percentiles }>('RESULT', (SECONDS + 20) * 1000);
    await listener.stop();
    return latency;
  } finally {
    await Promise.all([emitter.stop(), relay.stop()]);
  }
}

interface Order {
  firsts: number;
  /** The fewest first deliveries whose removal leaves the rest in seq order. */
  outOfOrder: number;
  /** First deliveries that arrived after a larger seq. */
  behindLarger: number;
  redeliveries: number;
  examples: { event: string; seq: number; afterSeq: number }[];
}

interface LiveRun {
  load: any;
  delays: Percentiles;
  order: Order;
  /** Bookings answered 201 among the timed requests. */
  made: number;
  /** With the open transaction: when it was open (CLOCK_MONOTONIC), and the delays of bookings committed meanwhile. */
  openTx?: { from: number; to: number; delays: Percentiles };
  /** The decoder's own stage timings over the run (bench/lib/feed-stages.ts). */
  stages: string;
}

/** One timed run: a client on B, the open-loop load on A, and (with openTx) the unrelated transaction. */
async function liveRun(ctx: Ctx, resourceIds: string[], opts: { name: string; keyPrefix: string; slotOffset: number; openTx: boolean }): Promise<LiveRun> {
  if (opts.openTx) await ctx.pool.query('CREATE TABLE IF NOT EXISTS bench_unrelated (id bigserial PRIMARY KEY, note text NOT NULL, at timestamptz NOT NULL DEFAULT now())');
  const day = new Date(ctx.baseMs).toISOString();
  const dayEnd = new Date(ctx.baseMs + 86_400_000).toISOString();
  const listener = startWorker(`${opts.name}-client`, 'sio-listener.ts', {
    mode: 'slotwise', url: ctx.B.url, token: ctx.apiKey, resourceIds, from: day, to: dayEnd, seconds: WARMUP_S + SECONDS + DRAIN_S + 60,
  });
  try {
    await listener.line('READY', 20_000);
    const stagesBefore = await readFeedStages([ctx.A.url, ctx.B.url]);
    const load = startWorker(`${opts.name}-load`, 'open-loop.ts', {
      url: ctx.A.url, path: '/v1/bookings', rate: RATE, warmupS: WARMUP_S, durationS: SECONDS, drainS: DRAIN_S, headers: { authorization: `Bearer ${ctx.apiKey}` },
      resourceIds, baseMs: ctx.baseMs, slotMs: FIVE_MIN, slotOffset: opts.slotOffset, keyPrefix: opts.keyPrefix,
    });
    let result: any;
    let txWindow: { from: number; to: number } | undefined;
    try {
      await load.line('MEASURING', (WARMUP_S + 20) * 1000);
      const tx = opts.openTx ? openTransaction(ctx) : null;
      tx?.catch(() => {}); // awaited below; a failure must not go unhandled while the load runs
      result = await load.line<any>('RESULT', (WARMUP_S + SECONDS + DRAIN_S + 20) * 1000);
      txWindow = (await tx) ?? undefined;
    } finally {
      await load.stop();
    }
    await sleep(LISTEN_AFTER_MS);
    listener.child.kill('SIGUSR2');
    const { arrivals, order } = await listener.line<{ arrivals: [string, number][]; order: Order }>('RESULT', 20_000);
    const commits = new Map((await readTrace(ctx.A)).commits);
    const delays: number[] = [];
    const during: number[] = [];
    for (const [key, at] of arrivals) {
      const committed = commits.get(key);
      // Only the timed part: keys of this run after the warm-up.
      if (committed === undefined || !key.startsWith(opts.keyPrefix) || Number(key.slice(opts.keyPrefix.length)) < result.firstMeasured) continue;
      delays.push(at - committed);
      if (txWindow && committed >= txWindow.from && committed <= txWindow.to) during.push(at - committed);
    }
    const run: LiveRun = {
      load: result, delays: percentiles(delays), order, made: result.statuses['201'] ?? 0,
      openTx: txWindow && { ...txWindow, delays: percentiles(during) },
      // The warm-up's bookings are in it too.
      stages: describeFeedStages(stagesBefore, await readFeedStages([ctx.A.url, ctx.B.url])),
    };
    const p = run.delays;
    ctx.log(`  offered ${num(result.offered)}/s, answered ${num(result.okPerSecond)} bookings/s (${JSON.stringify(result.statuses)}${result.unanswered ? `, ${result.unanswered} unanswered` : ''}); HTTP p50 ${ms(result.latency.p50)}, p99 ${ms(result.latency.p99)} from the schedule; up to ${result.peakSockets} connections, ${result.waitedForSocket} requests waited for one`);
    ctx.log(`  ${p.n} events timed: p50 ${ms(p.p50)}, p99 ${ms(p.p99)}, max ${ms(p.max)}; first deliveries ${order.firsts}, out of seq order ${order.outOfOrder} (${order.behindLarger} arrived after a larger seq${order.examples.length ? `, e.g. ${JSON.stringify(order.examples)}` : ''}), redeliveries ${order.redeliveries}`);
    ctx.log(`  ${run.stages}`);
    if (run.openTx) ctx.log(`  open transaction for ${ms(run.openTx.to - run.openTx.from)}: ${run.openTx.delays.n} bookings committed meanwhile, delivered p50 ${ms(run.openTx.delays.p50)}, p99 ${ms(run.openTx.delays.p99)}, max ${ms(run.openTx.delays.max)}`);
    return run;
  } finally {
    await listener.stop();
  }
}

/**
 * A separate client writes something no booking reads (a row of a scratch
 * table), so the transaction has an id, and keeps it open OPEN_TX_S seconds
 * (pg_sleep) before committing, starting OPEN_TX_AFTER_S into the timed window.
 */
async function openTransaction(ctx: Ctx): Promise<{ from: number; to: number }> {
  await sleep(OPEN_TX_AFTER_S * 1000);
  const c = new pg.Client({ connectionString: ctx.db.url });
  await c.connect();
  try {
    const from = monoMs();
    await c.query('BEGIN');
    await c.query("INSERT INTO bench_unrelated (note) VALUES ('P4: a writing transaction left open')");
    const { rows } = await c.query('SELECT pg_current_xact_id_if_assigned()::text AS xid');
    if (!rows[0]?.xid) throw new Error('the unrelated transaction has no transaction id');
    await c.query('SELECT pg_sleep($1)', [OPEN_TX_S]);
    await c.query('COMMIT');
    return { from, to: monoMs() };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await c.end();
  }
}

function row(run: LiveRun, bare: Percentiles, text: { what: string; peer: string; target: string }): Row {
  const p = run.delays;
  const complete = p.n >= run.made * 0.99 && run.made > 0;
  const kept = run.load.okPerSecond >= RATE * 0.95;
  const ordered = run.order.outOfOrder === 0;
  const notes = [
    complete ? '' : `only ${p.n} of ${run.made} bookings were seen on node B`,
    kept ? '' : `node A answered ${num(run.load.okPerSecond)} bookings/s of ${RATE} offered`,
    `${run.order.outOfOrder} of ${run.order.firsts} first deliveries out of seq order`,
    run.order.redeliveries ? `${run.order.redeliveries} redeliveries` : '',
    run.openTx ? `bookings committed while it was open: ${run.openTx.delays.n}, p99 ${ms(run.openTx.delays.p99)}, max ${ms(run.openTx.delays.max)}` : '',
    run.stages,
  ];
  return {
    id: 'P4', what: text.what, figure: `${ms(p.p50)} / ${ms(p.p99)}`, peer: text.peer, ratio: `${(p.p99 / bare.p99).toFixed(1)}× (p99)`, target: text.target,
    met: p.p50 <= 3 && p.p99 <= 15 && complete && kept && ordered, note: notes.filter(Boolean).join('; '),
  };
}
