/** API keys (stored as SHA-256 hashes) and the ids of issued user tokens. */
import { named, type Queryable } from '../pool';
import type { ApiKeyRow } from '../../core/store';

const toKey = (r: Record<string, any>): ApiKeyRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  name: r.name,
  prefix: r.prefix,
  createdAt: r.created_at.getTime(),
  expiresAt: r.expires_at?.getTime() ?? null,
  revokedAt: r.revoked_at?.getTime() ?? null,
});

const KEY_COLUMNS = 'id, tenant_id, name, prefix, created_at, expires_at, revoked_at';
const LIVE = 'revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())';

export const apiKeyRepository = {
  /** Stores the hash of a new key. */
  async insert(q: Queryable, tenantId: string, keyHash: Buffer, prefix: string, name: string): Promise<ApiKeyRow> {
    const { rows } = await q.query(`INSERT INTO api_keys (tenant_id, key_hash, prefix, name) VALUES ($1, $2, $3, $4) RETURNING ${KEY_COLUMNS}`, [tenantId, keyHash, prefix, name]);
    return toKey(rows[0]);
  },

  /** The live key with this hash (not revoked, not expired), if any. */
  async byHash(q: Queryable, keyHash: Buffer): Promise<ApiKeyRow | null> {
    const { rows } = await q.query(named('keys.byHash', `SELECT ${KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND ${LIVE}`, [keyHash]));
    return rows[0] ? toKey(rows[0]) : null;
  },

  /** One key of the tenant, optionally locked. */
  async get(q: Queryable, tenantId: string, id: string, lock = false): Promise<ApiKeyRow | null> {
    const { rows } = await q.query(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`, [tenantId, id]);
    return rows[0] ? toKey(rows[0]) : null;
  },

  /** A page of the tenant's keys, oldest first, after the cursor. */
  async page(q: Queryable, tenantId: string, after: { createdAt: number; id: string } | null, limit: number): Promise<ApiKeyRow[]> {
    const { rows } = await q.query(
      `SELECT ${KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
       ORDER BY created_at, id LIMIT $4`,
      [tenantId, after ? new Date(after.createdAt) : null, after?.id ?? null, limit],
    );
    return rows.map(toKey);
  },

  /**
   * How many keys of the tenant will keep working (not revoked, and not
   * rotated away: no expiry), not counting `except`; locks them so two
   * revocations cannot both pass.
   */
  async lastingCount(q: Queryable, tenantId: string, except?: string): Promise<number> {
    const { rows } = await q.query('SELECT id FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL AND expires_at IS NULL AND id IS DISTINCT FROM $2 FOR UPDATE', [tenantId, except ?? null]);
    return rows.length;
  },

  /** Revokes a key now. */
  async revoke(q: Queryable, id: string): Promise<ApiKeyRow> {
    const { rows } = await q.query(`UPDATE api_keys SET revoked_at = now(), changed_at = now() WHERE id = $1 RETURNING ${KEY_COLUMNS}`, [id]);
    return toKey(rows[0]);
  },

  /** Makes a key stop working `seconds` from now (or sooner, if it already expires sooner). */
  async expireIn(q: Queryable, id: string, seconds: number): Promise<ApiKeyRow> {
    const { rows } = await q.query(
      `UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), now() + make_interval(secs => $2)), changed_at = now()
       WHERE id = $1 RETURNING ${KEY_COLUMNS}`,
      [id, seconds],
    );
    return toKey(rows[0]);
  },

  /** Keys revoked or given an expiry after `since` (the database clock), for nodes that may have missed the news. */
  async changedSince(q: Queryable, since: Date): Promise<{ id: string; endsAt: number }[]> {
    const { rows } = await q.query(
      `SELECT id, COALESCE(revoked_at, expires_at) AS ends_at FROM api_keys
       WHERE changed_at > $1 AND (revoked_at IS NOT NULL OR expires_at IS NOT NULL)`,
      [since],
    );
    return rows.map((r) => ({ id: r.id, endsAt: r.ends_at.getTime() }));
  },
};

export const userTokenRepository = {
  /** Records an issued token's id. */
  async insert(q: Queryable, t: { id: string; tenantId: string; userId: string; expiresAt: number }): Promise<void> {
    await q.query('INSERT INTO user_tokens (id, tenant_id, user_id, expires_at) VALUES ($1, $2, $3, $4)', [t.id, t.tenantId, t.userId, new Date(t.expiresAt)]);
  },

  /** Revokes one token of the tenant (`fresh`: by this call); null when the tenant issued no token with that id. */
  async revoke(q: Queryable, tenantId: string, id: string): Promise<{ id: string; userId: string; expiresAt: number; revokedAt: number; fresh: boolean } | null> {
    const { rows } = await q.query(
      `WITH t AS (SELECT id, revoked_at FROM user_tokens WHERE tenant_id = $1 AND id = $2 FOR UPDATE)
       UPDATE user_tokens u SET revoked_at = COALESCE(u.revoked_at, now()) FROM t WHERE u.id = t.id
       RETURNING u.id, u.user_id, u.expires_at, u.revoked_at, t.revoked_at IS NULL AS fresh`,
      [tenantId, id],
    );
    const r = rows[0];
    return r ? { id: r.id, userId: r.user_id, expiresAt: r.expires_at.getTime(), revokedAt: r.revoked_at.getTime(), fresh: r.fresh } : null;
  },

  /** Revokes every unexpired token of a user; returns their ids and expiries. */
  async revokeUser(q: Queryable, tenantId: string, userId: string): Promise<{ id: string; expiresAt: number }[]> {
    const { rows } = await q.query(
      `UPDATE user_tokens SET revoked_at = now() WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > now()
       RETURNING id, expires_at`,
      [tenantId, userId],
    );
    return rows.map((r) => ({ id: r.id, expiresAt: r.expires_at.getTime() }));
  },

  /** Tokens revoked after `since` that have not expired yet. */
  async revokedSince(q: Queryable, since: Date): Promise<{ id: string; expiresAt: number }[]> {
    const { rows } = await q.query(
      named('tokens.revokedSince', 'SELECT id, expires_at FROM user_tokens WHERE revoked_at > $1 AND expires_at > now()', [since]),
    );
    return rows.map((r) => ({ id: r.id, expiresAt: r.expires_at.getTime() }));
  },

  /** Deletes records of tokens that expired a day ago or more (they cannot be presented any more). */
  async purgeExpired(q: Queryable): Promise<void> {
    await q.query("DELETE FROM user_tokens WHERE expires_at < now() - interval '1 day'");
  },

  /** The database clock (what `since` is measured in). */
  async now(q: Queryable): Promise<Date> {
    const { rows } = await q.query('SELECT now() AS now');
    return rows[0].now;
  },
};
