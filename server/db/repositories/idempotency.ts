/** Stored responses for Idempotency-Key replays (24 hours). */
import type { Queryable } from '../pool';
import type { StoredResponse } from '../../core/store';

export const idempotencyRepository = {
  /**
   * Claims a key inside the request's transaction. A concurrent request with
   * the same key blocks on the primary key until this transaction ends, then
   * sees the stored response. Returns null when claimed, else the existing record.
   */
  async claim(q: Queryable, scope: string, key: string, fingerprint: string): Promise<StoredResponse | null> {
    const { rows } = await q.query(
      `INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3)
       ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, status = NULL, headers = NULL, body = NULL, created_at = now()
         WHERE idempotency_keys.created_at < now() - interval '24 hours'
       RETURNING 1`,
      [scope, key, fingerprint],
    );
    if (rows.length) return null;
    const existing = await q.query('SELECT fingerprint, status, headers, body FROM idempotency_keys WHERE scope = $1 AND key = $2', [scope, key]);
    return existing.rows[0] ?? null;
  },

  /** Stores the response of a claimed key. */
  async complete(q: Queryable, scope: string, key: string, status: number, headers: Record<string, string>, body: string): Promise<void> {
    await q.query('UPDATE idempotency_keys SET status = $3, headers = $4, body = $5 WHERE scope = $1 AND key = $2', [scope, key, status, headers, body]);
  },

  /** Forgets keys older than 24 hours. */
  async purge(q: Queryable): Promise<number> {
    const { rowCount } = await q.query("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'");
    return rowCount ?? 0;
  },
};
