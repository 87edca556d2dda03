/**
 * P6: 20,000 idle Socket.IO clients on one fresh node, each subscribed to a
 * resource (PRODUCT.md §5's `subscribe`, acked with its snapshot), from four
 * client processes, each from a loopback address of its own (127.0.0.2–5:
 * 5,000 connections never come near one address's ephemeral ports). The
 * node's RSS (VmRSS) before and after, per client.
 *
 * Every connection is one open file of the node, so the node's open-files
 * limit (raised in the shell that starts it, up to the hard limit this bench
 * runs under) bounds how many can connect: when the limit, less the files the
 * node already holds and a margin for pool connections it may still open, is
 * under 20,000, the bench connects that many and the row says so (and is not
 * met: the target is 20,000 connected). The node's MAX_CONNECTIONS is set
 * just under its open-files limit (by default it keeps 1,000 files for other
 * uses and refuses connections past that).
 */
import { readdir, readFile } from 'node:fs/promises';
import { startNode } from './lib/cluster';
import type { Ctx } from './lib/context';
import { openResource } from './lib/hold-data';
import { rssOf, sleep, startWorker, type Proc } from './lib/proc';
import { kb, num } from './lib/stats';

const CLIENTS = 20_000;
const PROCESSES = 4;
/** Each client process's source address: 127.0.0.2, .3, … */
const sourceAddress = (i: number) => `127.0.0.${2 + i}`;
const RESOURCES = 100;
const TARGET_BYTES = 16 * 1024;
/** What the node may still open after the warm-up besides client connections: pg pool connections (at most 29), Redis. */
const FD_MARGIN = 40;
/** RSS read every 5 s this many times after the figure, for the note. */
const SETTLE_SAMPLES = 6;

/** The soft open-files limit of a process and how many it has open. */
async function openFiles(pid: number): Promise<{ limit: number; open: number }> {
  const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  const limit = !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
  return { limit, open: (await readdir(`/proc/${pid}/fd`)).length };
}

/** The open-files limit a child can be given: the hard limit this process runs under. */
async function hardNofile(): Promise<number> {
  const m = /^Max open files\s+\S+\s+(\d+|unlimited)/m.exec(await readFile('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? 1_048_576 : Number(m[1]);
}

export async function runP6(ctx: Ctx): Promise<void> {
  ctx.log(`P6: ${num(CLIENTS)} idle Socket.IO clients on one node, each subscribed to one of ${RESOURCES} resources`);
  // Resources open around the clock on a 30-minute grid; each subscribe asks for 2 hours (4 slots) of its resource.
  const resourceIds: string[] = [];
  for (let i = 0; i < RESOURCES; i += 10) {
    resourceIds.push(...await Promise.all(Array.from({ length: Math.min(10, RESOURCES - i) }, (_, j) => openResource(ctx, `p6-${i + j}`, 10, 30))));
  }
  const from = new Date(ctx.baseMs + 10 * 3_600_000).toISOString();
  const to = new Date(ctx.baseMs + 12 * 3_600_000).toISOString();
  const subscribe = (first: number) => ({ resourceIds, from, to, first });

  const nofile = await hardNofile();
  // The node's own cap on connections (MAX_CONNECTIONS) keeps 1,000 of its files (a quarter, at most) for
  // everything else by default: this node holds only pool and Redis connections besides its clients.
  const maxConnections = nofile - 50;
  const node = await startNode('node-idle', { ...ctx.nodeEnv, MAX_CONNECTIONS: String(maxConnections) }, ctx.tmp, nofile);
  const clients: Proc[] = [];
  try {
    // A first few clients warm the code paths (and the pool), so the baseline is a node that has served some.
    const warm = startWorker('p6-warm', 'sio-idle.ts', { url: node.url, token: ctx.userToken, count: 10, concurrency: 10, timeoutMs: 20_000, subscribe: subscribe(0) }, { nofile });
    const w = await warm.line<{ subscribed: number; firstError: string | null }>('READY', 30_000);
    if (w.subscribed !== 10) throw new Error(`P6 warm-up: ${w.subscribed} of 10 subscribed (${w.firstError})`);
    await warm.stop();
    await sleep(2_000);
    const before = await rssOf(node.proc.pid);
    const files = await openFiles(node.proc.pid);
    const planned = Math.min(CLIENTS, maxConnections, files.limit - files.open - FD_MARGIN);
    const capped = planned < CLIENTS
      ? `the node's open-files limit is ${num(files.limit)} (the hard limit here; MAX_CONNECTIONS ${num(maxConnections)}) and it held ${files.open} files before the clients: ${num(planned)} clients planned`
      : '';
    if (capped) ctx.log(`  ${capped}`);
    const per = Math.floor(planned / PROCESSES);
    for (let i = 0; i < PROCESSES; i++) {
      const count = i === PROCESSES - 1 ? planned - per * (PROCESSES - 1) : per;
      clients.push(startWorker(`p6-clients-${i}`, 'sio-idle.ts', {
        url: node.url, token: ctx.userToken, count, concurrency: 50, timeoutMs: 240_000, localAddress: sourceAddress(i), subscribe: subscribe(i * per),
      }, { nofile }));
    }
    const ready = await Promise.all(clients.map((c) => c.line<{ connected: number; subscribed: number; failed: number; firstError: string | null }>('READY', 270_000)));
    const connected = ready.reduce((n, r) => n + r.connected, 0);
    const subscribed = ready.reduce((n, r) => n + r.subscribed, 0);
    const failed = ready.reduce((n, r) => n + r.failed, 0);
    const firstError = ready.find((r) => r.firstError)?.firstError;
    await sleep(5_000);
    const after = await rssOf(node.proc.pid);
    const perClient = (after - before) / subscribed;
    ctx.log(`  ${num(connected)} connected, ${num(subscribed)} subscribed, ${failed} failed${firstError ? ` (${firstError})` : ''}; RSS ${num(before / 2 ** 20)} → ${num(after / 2 ** 20)} MiB, ${kb(perClient)} per client`);
    // The figure above still holds what the 20,000 handshakes left for the collector; how far RSS falls while
    // the clients stay idle is shown beside it (in the note), not in place of it.
    const later: number[] = [];
    for (let i = 0; i < SETTLE_SAMPLES; i++) {
      await sleep(5_000);
      later.push(await rssOf(node.proc.pid));
    }
    const settled = later[later.length - 1]!;
    ctx.log(`  RSS while idle, every 5 s: ${later.map((r) => num(r / 2 ** 20)).join(', ')} MiB; after ${SETTLE_SAMPLES * 5} s more ${kb((settled - before) / subscribed)} per client`);
    ctx.rows.push({
      id: 'P6', what: `idle Socket.IO clients on one node, each subscribed to a resource (RSS ${num(before / 2 ** 20)} → ${num(after / 2 ** 20)} MiB)`,
      figure: `${num(subscribed)} subscribed, ${kb(perClient)} each`,
      peer: '', ratio: '', target: `${num(CLIENTS)} connected, ≤ ${TARGET_BYTES / 1024} KB RSS per client`,
      met: subscribed >= CLIENTS && connected >= CLIENTS && perClient <= TARGET_BYTES,
      note: [
        `${kb((settled - before) / subscribed)} per client after ${SETTLE_SAMPLES * 5} s more idle (RSS ${num(settled / 2 ** 20)} MiB)`,
        capped, failed ? `${failed} failed: ${firstError}` : '',
      ].filter(Boolean).join('; '),
    });
  } finally {
    await Promise.all(clients.map((c) => c.stop()));
    await node.proc.stop();
  }
}
