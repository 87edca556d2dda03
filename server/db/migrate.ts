/** Applies the numbered SQL files in migrations/ once each, safely when several nodes start together. */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
const LOCK_KEY = 7261000;

/** The replication slot the feed decoder streams (one per database: several Slotwise databases may share a Postgres). */
export async function feedSlotName(q: Pick<pg.ClientBase, 'query'>): Promise<string> {
  const { rows } = await q.query('SELECT oid FROM pg_database WHERE datname = current_database()');
  return `slotwise_feed_${rows[0].oid}`;
}

/**
 * Creates the feed's logical replication slot unless it exists. It must exist
 * before any event is written (a slot only sees what commits after it), so
 * this runs at start, before the node serves. Postgres must run with
 * wal_level = logical; without it the node refuses to start, naming the setting.
 */
async function ensureFeedSlot(client: pg.PoolClient): Promise<void> {
  const { rows } = await client.query("SELECT current_setting('wal_level') AS wal_level");
  if (rows[0].wal_level !== 'logical') {
    throw new Error(
      `Postgres runs with wal_level = ${rows[0].wal_level}; Slotwise's event feed needs wal_level = logical. ` +
        "Run ALTER SYSTEM SET wal_level = 'logical' (or set it in postgresql.conf) and restart Postgres (docs/operations.md).",
    );
  }
  const slot = await feedSlotName(client);
  const exists = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  if (exists.rows.length) return;
  try {
    await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
  } catch (err) {
    // Made meanwhile by someone else (nodes of this database wait on the migration lock above): fine.
    if ((err as { code?: string }).code !== '42710') throw err;
  }
}

/** Applies pending migrations and makes sure the feed's slot exists; returns the names it applied. */
export async function migrate(pool: pg.Pool): Promise<string[]> {
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    // Migrations (and waiting for another node's) may take longer than a request's statement deadline.
    await client.query('SET statement_timeout = 0');
    // A session lock: a second node waits here, then finds nothing left to do.
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    const files = (await readdir(DIR)).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
    for (const file of files) {
      const version = Number(file.split('_')[0]);
      if (done.has(version)) continue;
      const sql = await readFile(path.join(DIR, file), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [version, file]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed: ${(err as Error).message}`);
      }
      applied.push(file);
    }
    await ensureFeedSlot(client);
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
    await client.query('RESET statement_timeout').catch(() => {});
    client.release();
  }
  return applied;
}

/**
 * Drops a Slotwise database (tests and the bench make and drop their own).
 * DROP DATABASE refuses a database that has a replication slot, and WITH
 * (FORCE) ends ordinary backends only: so first end the walsenders streaming
 * from its slots and drop the slots. A walsender just told to stop can hold
 * its slot a moment longer (object_in_use), so the whole sequence is retried
 * briefly. `c` is connected to another database of the same server.
 */
export async function dropDatabase(c: Pick<pg.ClientBase, 'query'>, name: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await c.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL', [name]);
      await c.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1', [name]);
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '55006' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
