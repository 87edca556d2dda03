/**
 * P6's clients: `count` socket.io-client connections (websocket transport)
 * with a user token, opened `concurrency` at a time from `localAddress` (a
 * loopback address of their own, so several processes never share one
 * address's ephemeral ports). With `subscribe`, each connection then sends
 * PRODUCT.md's `subscribe {resourceIds, from, to}` for one resource (the
 * connection's number, from `first`, modulo the list) and waits for its ack
 * `{ok: true, seq, availability}`; a connection counts as subscribed only
 * then. Then all are left idle. Prints `READY {connected, subscribed, failed,
 * firstError}` and stays until SIGTERM.
 */
import { io, type Socket } from 'socket.io-client';
import { workerConfig } from '../lib/config';

const cfg = workerConfig<{
  url: string; token: string; count: number; concurrency: number; timeoutMs: number;
  localAddress?: string;
  /** The resources to subscribe to, one per connection, round robin from the connection numbered `first`. */
  subscribe?: { resourceIds: string[]; from: string; to: string; first: number };
}>();
const sockets: Socket[] = [];
let subscribed = 0;
let failed = 0;
let firstError: string | null = null;

async function open(n: number): Promise<void> {
  const s = io(cfg.url, {
    transports: ['websocket'], auth: { token: cfg.token }, reconnection: false, forceNew: true, timeout: cfg.timeoutMs,
    ...(cfg.localAddress ? { localAddress: cfg.localAddress } : {}),
  });
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('connect_error', (err) => reject(err));
  });
  if (!cfg.subscribe) return;
  const { resourceIds, from, to, first } = cfg.subscribe;
  const resourceId = resourceIds[(first + n) % resourceIds.length]!;
  const ack = await s.timeout(cfg.timeoutMs).emitWithAck('subscribe', { resourceIds: [resourceId], from, to });
  if (!ack?.ok || typeof ack.seq !== 'number' || !ack.availability) throw new Error(`subscribe refused: ${JSON.stringify(ack).slice(0, 300)}`);
  subscribed++;
}

/** An error with what lies under it (socket.io-client's `websocket error` carries the ws error as `description`). */
function describe(err: unknown): string {
  const e = err as Error & { description?: { message?: string; error?: { code?: string; message?: string } } };
  const under = e.description?.error?.code ?? e.description?.error?.message ?? e.description?.message;
  return under ? `${e.message}: ${under}` : e.message;
}

async function main() {
  const deadline = Date.now() + cfg.timeoutMs;
  let next = 0;
  const worker = async () => {
    while (next < cfg.count) {
      if (Date.now() > deadline) throw new Error(`only ${sockets.length} of ${cfg.count} connected in time`);
      const n = next++;
      try {
        await open(n);
      } catch (err) {
        // Counted and reported: the bench decides what a shortfall means.
        failed++;
        firstError ??= describe(err);
        if (failed > 100) throw new Error(`more than 100 connections failed; the first: ${firstError}`);
      }
    }
  };
  await Promise.all(Array.from({ length: cfg.concurrency }, worker));
  console.log('READY ' + JSON.stringify({ connected: sockets.filter((s) => s.connected).length, subscribed, failed, firstError }));
}

process.on('SIGTERM', () => {
  for (const s of sockets) s.close();
  process.exit(0);
});
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
