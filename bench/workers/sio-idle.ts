/**
 * P6's clients: `count` socket.io-client connections (websocket transport)
 * with a user token, opened `concurrency` at a time, then left idle. Prints
 * `READY {connected}` and stays until SIGTERM.
 */
import { io, type Socket } from 'socket.io-client';
import { workerConfig } from '../lib/config';

const cfg = workerConfig<{ url: string; token: string; count: number; concurrency: number; timeoutMs: number }>();
const sockets: Socket[] = [];

function open(): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = io(cfg.url, { transports: ['websocket'], auth: { token: cfg.token }, reconnection: false, forceNew: true, timeout: cfg.timeoutMs });
    sockets.push(s);
    s.once('connect', () => resolve());
    s.once('connect_error', (err) => reject(err));
  });
}

async function main() {
  const deadline = Date.now() + cfg.timeoutMs;
  let next = 0;
  const worker = async () => {
    while (next < cfg.count) {
      if (Date.now() > deadline) throw new Error(`only ${sockets.length} of ${cfg.count} connected in time`);
      next++;
      await open();
    }
  };
  await Promise.all(Array.from({ length: cfg.concurrency }, worker));
  console.log('READY ' + JSON.stringify({ connected: sockets.filter((s) => s.connected).length }));
}

process.on('SIGTERM', () => {
  for (const s of sockets) s.close();
  process.exit(0);
});
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
