/**
 * P5's peer: a Hocuspocus 3.4.4 server with its Redis extension (the newest
 * release that runs on Node 20), in-memory documents, on a free port.
 */
import { Redis } from '@hocuspocus/extension-redis';
import { Server } from '@hocuspocus/server';
import { workerConfig } from '../lib/config';

const cfg = workerConfig<{ redisUrl: string; name: string }>();
const redis = new URL(cfg.redisUrl);
const server = new Server({
  port: 0,
  address: '127.0.0.1',
  quiet: true,
  stopOnSignals: false,
  extensions: [new Redis({ host: redis.hostname, port: Number(redis.port), identifier: cfg.name })],
});

async function main() {
  await server.listen();
  console.log('READY ' + JSON.stringify({ port: server.address.port }));
}
process.on('SIGTERM', () => void server.destroy().finally(() => process.exit(0)));
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
