/**
 * P6: 10,000 idle Socket.IO clients on one fresh node (its open-files limit
 * raised in the shell that starts it), from two client processes; the node's
 * RSS (VmRSS) before and after, per client.
 */
import { startNode } from './lib/cluster';
import type { Ctx } from './lib/context';
import { rssOf, sleep, startWorker, type Proc } from './lib/proc';
import { kb, num } from './lib/stats';

const CLIENTS = 10_000;
const PROCESSES = 2;
const NOFILE = 20_000;

export async function runP6(ctx: Ctx): Promise<void> {
  ctx.log(`P6: ${num(CLIENTS)} idle Socket.IO clients on one node`);
  const node = await startNode('node-idle', ctx.nodeEnv, ctx.tmp, NOFILE);
  const clients: Proc[] = [];
  try {
    // A first client warms the code paths, so the baseline is a node that has served one.
    const warm = startWorker('p6-warm', 'sio-idle.ts', { url: node.url, token: ctx.userToken, count: 10, concurrency: 10, timeoutMs: 20_000 }, { nofile: NOFILE });
    await warm.line('READY', 30_000);
    await warm.stop();
    await sleep(2_000);
    const before = await rssOf(node.proc.pid);
    for (let i = 0; i < PROCESSES; i++) {
      clients.push(startWorker(`p6-clients-${i}`, 'sio-idle.ts', { url: node.url, token: ctx.userToken, count: CLIENTS / PROCESSES, concurrency: 50, timeoutMs: 120_000 }, { nofile: NOFILE }));
    }
    const ready = await Promise.all(clients.map((c) => c.line<{ connected: number }>('READY', 150_000)));
    const connected = ready.reduce((n, r) => n + r.connected, 0);
    await sleep(5_000);
    const after = await rssOf(node.proc.pid);
    const per = (after - before) / connected;
    ctx.log(`  ${num(connected)} connected; RSS ${num(before / 2 ** 20)} → ${num(after / 2 ** 20)} MiB, ${kb(per)} per client`);
    ctx.rows.push({
      id: 'P6', what: `idle Socket.IO clients on one node (RSS ${num(before / 2 ** 20)} → ${num(after / 2 ** 20)} MiB)`, figure: `${num(connected)} connected, ${kb(per)} each`,
      peer: '', ratio: '', target: '10,000 connected, ≤ 50 KB RSS per client', met: connected >= CLIENTS && per <= 50 * 1024,
    });
  } finally {
    await Promise.all(clients.map((c) => c.stop()));
    await node.proc.stop();
  }
}
