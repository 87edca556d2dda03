/**
 * `npm run cluster [-- N]`: N Slotwise nodes (default 2) on consecutive ports
 * from PORT (3000), against one Postgres and one Redis. DATABASE_URL and
 * REDIS_URL are used when set; otherwise the local servers on their default
 * ports (database `slotwise_cluster`, created when missing), and an embedded
 * Postgres when no local one answers. Each node's output is prefixed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pgReachable, startEmbeddedPostgres, type EmbeddedHandle } from '../server/db/embedded';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const COLORS = ['\x1b[36m', '\x1b[35m', '\x1b[33m', '\x1b[32m', '\x1b[34m'];

/** A database URL every node can share. */
async function database(): Promise<{ url: string; embedded?: EmbeddedHandle }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL };
  for (const user of ['postgres', 'root']) {
    const admin = `postgres://${user}@127.0.0.1:5432/postgres`;
    if (!(await pgReachable(admin))) continue;
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    const exists = await c.query("SELECT 1 FROM pg_database WHERE datname = 'slotwise_cluster'");
    if (exists.rowCount === 0) await c.query('CREATE DATABASE slotwise_cluster');
    await c.end();
    return { url: `postgres://${user}@127.0.0.1:5432/slotwise_cluster` };
  }
  const embedded = await startEmbeddedPostgres(path.join(ROOT, '.data', 'cluster'), (m) => console.error(m));
  return { url: embedded.url, embedded };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? process.env.CLUSTER_NODES ?? 2);
  if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error('usage: npm run cluster -- [nodes 1..16]');
  const basePort = Number(process.env.PORT ?? 3000);
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const db = await database();
  console.log(`Starting ${n} nodes on ports ${basePort}..${basePort + n - 1}\n  Postgres: ${db.url.replace(/\/\/[^@]*@/, '//')}\n  Redis:    ${redisUrl}\n`);

  const children: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    const name = `node-${i + 1}`;
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(basePort + i), NODE_ID: name, DATABASE_URL: db.url, REDIS_URL: redisUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const prefix = `${COLORS[i % COLORS.length]}[${name}]\x1b[0m `;
    let up: () => void = () => {};
    const ready = new Promise<void>((resolve) => (up = resolve));
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        console.log(prefix + line);
        if (line.includes('Slotwise is running')) up();
      });
    }
    child.on('exit', (code, signal) => {
      console.log(`${prefix}exited (${signal ?? code})`);
      up();
    });
    children.push(child);
    // One at a time: the first migrates and makes the dev credentials the others then find.
    await Promise.race([ready, new Promise((r) => setTimeout(r, 30_000))]);
  }

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.all(children.map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    })));
    await db.embedded?.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err) => {
  console.error('cluster failed to start:', err);
  process.exit(1);
});
