/**
 * One fresh database per test run: on DATABASE_URL's server when set, else the
 * local Postgres on 127.0.0.1:5432 (user postgres, then root), else an embedded
 * Postgres in a temporary directory. Migrated once here; dropped at the end.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { pgReachable, startEmbeddedPostgres, type EmbeddedHandle } from '../../server/db/embedded';
import { dropDatabase, migrate } from '../../server/db/migrate';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
  }
}

/**
 * Drops the databases of test runs whose process is gone (killed before its
 * teardown): each holds a replication slot, and a slot nobody reads keeps
 * the server's WAL forever.
 */
async function dropLeftovers(admin: pg.Client): Promise<void> {
  const { rows } = await admin.query("SELECT datname FROM pg_database WHERE datname ~ '^slotwise_test_[0-9]+_'");
  for (const { datname } of rows as { datname: string }[]) {
    const pid = Number(datname.split('_')[2]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) await dropDatabase(admin, datname).catch(() => {});
  }
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export default async function setup(project: TestProject) {
  let embedded: EmbeddedHandle | null = null;
  let tmp: string | null = null;
  const candidates = process.env.DATABASE_URL
    ? [process.env.DATABASE_URL]
    : ['postgres://postgres@127.0.0.1:5432/postgres', 'postgres://root@127.0.0.1:5432/postgres'];
  let serverUrl: string | undefined;
  for (const c of candidates) {
    if (await pgReachable(withDatabase(c, 'postgres'))) {
      serverUrl = c;
      break;
    }
  }
  if (!serverUrl) {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'slotwise-test-pg-'));
    // As root, Postgres runs as the OS user postgres, which must be able to enter it (else the cluster goes to /var/lib/slotwise).
    await chmod(tmp, 0o755);
    embedded = await startEmbeddedPostgres(tmp, () => {});
    serverUrl = embedded.url;
  }
  const name = `slotwise_test_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
  await admin.connect();
  await dropLeftovers(admin);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const databaseUrl = withDatabase(serverUrl, name);
  const pool = new pg.Pool({ connectionString: databaseUrl });
  await migrate(pool);
  await pool.end();
  project.provide('databaseUrl', databaseUrl);
  project.provide('redisUrl', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');

  return async () => {
    const a = new pg.Client({ connectionString: withDatabase(serverUrl!, 'postgres') });
    await a.connect();
    await dropDatabase(a, name);
    await a.end();
    await embedded?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  };
}
