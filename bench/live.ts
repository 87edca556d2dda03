/**
 * P4: commit on node A → Socket.IO client on node B, while bookings are made
 * through node A at 500/s (autocannon), beside a bare Socket.IO + Redis
 * fan-out between two processes at the same rate, in the same run.
 */
import { openResource } from './lib/hold-data';
import { readTrace, type Ctx } from './lib/context';
import { runWorker, startWorker } from './lib/proc';
import { ms, num, percentiles } from './lib/stats';

const RATE = 500;
const SECONDS = 10;
const FIVE_MIN = 300_000;

export async function seedLive(ctx: Ctx): Promise<string[]> {
  return Promise.all([1, 2].map((i) => openResource(ctx, `p4-${i}`, 1, 5)));
}

export async function runP4(ctx: Ctx, resourceIds: string[]): Promise<void> {
  ctx.log(`P4: commit on node A → Socket.IO client on node B at ${RATE} bookings/s, beside bare Socket.IO + Redis`);
  // The peer first: two bare Socket.IO processes on the same Redis, a client on one, emits from the other.
  const emitter = startWorker('bare-sio-emitter', 'bare-sio.ts', { redisUrl: ctx.redisUrl, emitRate: RATE, seconds: SECONDS });
  const relay = startWorker('bare-sio-relay', 'bare-sio.ts', { redisUrl: ctx.redisUrl });
  let bare;
  try {
    await emitter.line('READY', 20_000);
    const { port } = await relay.line<{ port: number }>('READY', 20_000);
    const listener = startWorker('bare-sio-client', 'sio-listener.ts', { mode: 'bare', url: `http://127.0.0.1:${port}`, seconds: SECONDS + 3 });
    await listener.line('READY', 20_000);
    emitter.child.kill('SIGUSR2');
    bare = (await listener.line<{ latency: ReturnType<typeof percentiles> }>('RESULT', (SECONDS + 20) * 1000)).latency;
    await listener.stop();
  } finally {
    await Promise.all([emitter.stop(), relay.stop()]);
  }
  ctx.log(`  bare Socket.IO + Redis: ${bare.n} events, p50 ${ms(bare.p50)}, p99 ${ms(bare.p99)}`);

  const day = new Date(ctx.baseMs).toISOString();
  const dayEnd = new Date(ctx.baseMs + 86_400_000).toISOString();
  const listener = startWorker('p4-client', 'sio-listener.ts', { mode: 'slotwise', url: ctx.B.url, token: ctx.apiKey, resourceIds, from: day, to: dayEnd, seconds: SECONDS + 6 });
  await listener.line('READY', 20_000);
  const load = await runWorker<any>('p4-load', 'http-load.ts', {
    url: ctx.A.url, connections: 64, overallRate: RATE, warmupS: 2, durationS: SECONDS, kind: 'bookings', path: '/v1/bookings',
    headers: { authorization: `Bearer ${ctx.apiKey}` }, resourceIds, baseMs: ctx.baseMs, slotMs: FIVE_MIN, slotOffset: 0,
  }, 60_000);
  const { arrivals } = await listener.line<{ arrivals: [string, number][] }>('RESULT', 30_000);
  const commits = new Map((await readTrace(ctx.A)).commits);
  const delays: number[] = [];
  for (const [key, at] of arrivals) {
    const committed = commits.get(key);
    // Only the timed part: keys after the warm-up.
    if (committed !== undefined && Number(key.slice(1)) >= load.firstMeasured) delays.push(at - committed);
  }
  const p = percentiles(delays);
  const made = load.statuses['201'] ?? 0;
  ctx.log(`  Slotwise: ${num(load.okPerSecond)} bookings/s (${JSON.stringify(load.statuses)}), ${p.n} events timed, p50 ${ms(p.p50)}, p99 ${ms(p.p99)}`);
  const complete = p.n >= made * 0.99;
  ctx.rows.push({
    id: 'P4', what: `commit on A → Socket.IO client on B at ${num(load.okPerSecond)} bookings/s (p50 / p99)`, figure: `${ms(p.p50)} / ${ms(p.p99)}`,
    peer: `bare Socket.IO + Redis ${ms(bare.p50)} / ${ms(bare.p99)}`, ratio: `${(p.p99 / bare.p99).toFixed(1)}× (p99)`,
    target: 'p50 ≤ 3 ms, p99 ≤ 15 ms at 500/s', met: p.p50 <= 3 && p.p99 <= 15 && complete && load.okPerSecond >= RATE * 0.95,
    note: complete ? undefined : `only ${p.n} of ${made} bookings were seen on node B`,
  });
}
