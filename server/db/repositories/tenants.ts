/** Tenants and node-independent settings (API keys are in credentials.ts). */
import type { Queryable } from '../pool';

export const tenantRepository = {
  /** Inserts a tenant and returns its row. */
  async create(q: Queryable, name: string): Promise<{ id: string; name: string; createdAt: number }> {
    const { rows } = await q.query('INSERT INTO tenants (name) VALUES ($1) RETURNING id, name, created_at', [name]);
    const r = rows[0];
    return { id: r.id, name: r.name, createdAt: r.created_at.getTime() };
  },
};

export const settingsRepository = {
  /** Reads a setting, or inserts `fallback` when absent (first writer wins across nodes). */
  async getOrInit<T>(q: Queryable, key: string, fallback: T): Promise<T> {
    await q.query('INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, JSON.stringify(fallback)]);
    const { rows } = await q.query('SELECT value FROM settings WHERE key = $1', [key]);
    return rows[0].value as T;
  },

  /** Reads a setting. */
  async get<T>(q: Queryable, key: string): Promise<T | null> {
    const { rows } = await q.query('SELECT value FROM settings WHERE key = $1', [key]);
    return (rows[0]?.value as T) ?? null;
  },
};
