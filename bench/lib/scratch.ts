/**
 * Scratch copies of the server's tables, for SQL limits that must not be seen
 * by the running nodes (their outbox relays would number and deliver events
 * written to the real `events` table, and spend the machine's two cores on it
 * while the limit is measured).
 */
import type pg from 'pg';

/**
 * Creates `<prefix><table>` for each of `tables`: the same columns, defaults,
 * identity, CHECK constraints and indexes (LIKE ... INCLUDING ALL), and the
 * same foreign keys, pointing at the copy where the referenced table is one of
 * `tables` and at the real table otherwise. Triggers are not copied.
 * Existing copies are dropped first.
 */
export async function copyTables(pool: pg.Pool, tables: string[], prefix: string): Promise<void> {
  const copy = (t: string) => `${prefix}${t}`;
  for (const t of [...tables].reverse()) await pool.query(`DROP TABLE IF EXISTS ${copy(t)} CASCADE`);
  for (const t of tables) await pool.query(`CREATE TABLE ${copy(t)} (LIKE ${t} INCLUDING ALL)`);
  // The minimal transaction numbers its events itself (the real table's seq is given by the feed decoder).
  await pool.query('CREATE SEQUENCE IF NOT EXISTS bench_min_event_seq');
  for (const t of tables) {
    const { rows } = await pool.query<{ def: string }>(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f' ORDER BY conname`,
      [t],
    );
    for (const { def } of rows) {
      const mapped = def.replace(/REFERENCES (?:public\.)?(\w+)\(/, (m, ref: string) => (tables.includes(ref) ? `REFERENCES ${copy(ref)}(` : m));
      await pool.query(`ALTER TABLE ${copy(t)} ADD ${mapped}`);
    }
  }
}

/** Drops what copyTables made. */
export async function dropCopies(pool: pg.Pool, tables: string[], prefix: string): Promise<void> {
  for (const t of [...tables].reverse()) await pool.query(`DROP TABLE IF EXISTS ${prefix}${t} CASCADE`);
}
