import { startRedis } from '../lib/cluster';
import { runWorker, startWorker, stopAll } from '../lib/proc';
const redis = await startRedis();
try {
  const h1 = startWorker('h1', 'hocuspocus.ts', { redisUrl: redis.url, name: 'h1' });
  const h2 = startWorker('h2', 'hocuspocus.ts', { redisUrl: redis.url, name: 'h2' });
  const a = await h1.line<{ port: number }>('READY', 20000);
  const b = await h2.line<{ port: number }>('READY', 20000);
  const r = await runWorker<any>('edits', 'yjs-client.ts', { mode: 'edits', system: 'hocuspocus', docName: 'bench-doc', writer: { url: `http://127.0.0.1:${a.port}` }, reader: { url: `http://127.0.0.1:${b.port}` }, steps: [{ rate: 200, seconds: 3 }, { rate: 2000, seconds: 3 }, { rate: 6000, seconds: 3 }], stopAboveMs: 50 }, 60000, { echo: true });
  console.log(JSON.stringify(r));
} finally { await stopAll(); }
