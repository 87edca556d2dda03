/**
 * Where a node's memory per idle Socket.IO connection goes: one node (its own
 * database and Redis, as the bench makes them) started with the inspector on
 * loopback; clients (bench/workers/sio-idle.ts, each subscribed to one of 100
 * resources unless SIO_MEMORY_SUBSCRIBE=0) added in steps of `step`; after
 * each step, a full collection through the inspector and then the node's
 * process.memoryUsage() (rss, V8 heap used and total, external, array
 * buffers). Prints the growth per connection between the first and last
 * steps, so the fixed costs of the first connections are left out. With
 * SIO_MEMORY_SNAPSHOTS=<dir> it also writes a heap snapshot after each step
 * (compare two with `npx tsx bench/heap-diff.ts <a> <b> <step>`).
 *
 *   npx tsx bench/sio-memory.ts [step=2000] [steps=3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { ADMIN_TOKEN, api, createDatabase, freePort, must, startNode, startRedis } from './lib/cluster';
import type { Ctx } from './lib/context';
import { openResource } from './lib/hold-data';
import { sleep, startWorker, stopAll, type Proc } from './lib/proc';

const step = Number(process.argv[2] ?? 2000);
const steps = Number(process.argv[3] ?? 3);
const subscribeToo = process.env.SIO_MEMORY_SUBSCRIBE !== '0';
const snapshots = process.env.SIO_MEMORY_SNAPSHOTS ? path.resolve(process.env.SIO_MEMORY_SNAPSHOTS) : null;

/** A minimal Chrome DevTools Protocol client. */
async function inspector(port: number) {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(list[0]!.webSocketDebuggerUrl, { perMessageDeflate: false, maxPayload: 2 ** 31 });
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  let id = 0;
  const pending = new Map<number, (v: any) => void>();
  ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    if (m.id && pending.has(m.id)) {
      pending.get(m.id)!(m);
      pending.delete(m.id);
    }
  });
  const send = (method: string, params: unknown = {}) => new Promise<any>((resolve) => {
    const n = ++id;
    pending.set(n, resolve);
    ws.send(JSON.stringify({ id: n, method, params }));
  });
  const evaluate = async (expression: string) => {
    const r = await send('Runtime.evaluate', { expression, includeCommandLineAPI: true, returnByValue: true, awaitPromise: true });
    if (r.result?.exceptionDetails) throw new Error(JSON.stringify(r.result.exceptionDetails).slice(0, 500));
    return r.result?.result?.value;
  };
  return { send, evaluate, close: () => ws.close() };
}

type Mem = { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };

async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'slotwise-sio-memory-'));
  const redis = await startRedis();
  const db = await createDatabase();
  try {
    const inspectPort = await freePort();
    const nodeEnv = { DATABASE_URL: db.url, REDIS_URL: redis.url };
    const node = await startNode('node-mem', { ...nodeEnv, NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}` }, tmp, 20_000);
    const admin = api(node.url, ADMIN_TOKEN);
    const tenant = await must(admin('POST', '/v1/tenants', { name: 'mem' }), 201, 'tenant');
    const key = api(node.url, tenant.apiKey);
    const token = (await must(key('POST', '/v1/tokens', { userId: 'mem-user', name: 'Mem', role: 'organizer', ttlSeconds: 86_400 }), 201, 'token')).token;
    const now = new Date();
    const baseMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
    const ctx = { key } as unknown as Ctx;
    const resourceIds: string[] = [];
    for (let i = 0; i < 100; i += 10) resourceIds.push(...await Promise.all(Array.from({ length: 10 }, (_, j) => openResource(ctx, `m-${i + j}`, 10, 30))));
    const subscribe = (first: number) => subscribeToo
      ? { resourceIds, from: new Date(baseMs + 10 * 3_600_000).toISOString(), to: new Date(baseMs + 12 * 3_600_000).toISOString(), first }
      : undefined;

    const cdp = await inspector(inspectPort);
    const measure = async (label: string): Promise<Mem> => {
      await sleep(3_000);
      for (let i = 0; i < 3; i++) await cdp.send('HeapProfiler.collectGarbage');
      const m = (await cdp.evaluate('process.memoryUsage()')) as Mem;
      if (snapshots) await cdp.evaluate(`require('v8').writeHeapSnapshot(${JSON.stringify(path.join(snapshots, `${label}.heapsnapshot`))})`);
      const fds = (await readdir(`/proc/${node.proc.pid}/fd`)).length;
      console.log(label, `${fds} open files,`, Object.entries(m).map(([k, v]) => `${k} ${(v / 2 ** 20).toFixed(1)} MiB`).join(', '));
      return m;
    };

    const clients: Proc[] = [];
    const warm = startWorker('mem-warm', 'sio-idle.ts', { url: node.url, token, count: 10, concurrency: 10, timeoutMs: 20_000, subscribe: subscribe(0) });
    await warm.line('READY', 30_000);
    await warm.stop();
    const marks: Mem[] = [];
    for (let s = 0; s < steps; s++) {
      const c = startWorker(`mem-${s}`, 'sio-idle.ts', { url: node.url, token, count: step, concurrency: 50, timeoutMs: 240_000, localAddress: `127.0.0.${2 + s}`, subscribe: subscribe(s * step) }, { nofile: 20_000 });
      clients.push(c);
      const r = await c.line<{ connected: number; subscribed: number; failed: number }>('READY', 270_000);
      if (r.failed) throw new Error(`step ${s}: ${r.failed} failed: ${(r as any).firstError}`);
      marks.push(await measure(`${(s + 1) * step}`));
    }
    const first = marks[0]!;
    const last = marks[marks.length - 1]!;
    const n = step * (steps - 1);
    console.log(`per connection, from ${step} to ${step * steps} (${subscribeToo ? 'subscribed' : 'not subscribed'}):`);
    for (const k of Object.keys(first) as (keyof Mem)[]) console.log(`  ${k}: ${((last[k] - first[k]) / n / 1024).toFixed(2)} KB`);
    if (process.env.SIO_MEMORY_EVAL) console.log(JSON.stringify(await cdp.evaluate(process.env.SIO_MEMORY_EVAL), null, 1));
    cdp.close();
  } finally {
    await stopAll();
    await db.drop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
