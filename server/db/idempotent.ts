/**
 * Idempotent execution shared by HTTP and socket commands. The key is claimed
 * inside the same transaction as the work, so the stored response and the
 * change commit together: a concurrent duplicate waits on the key's row and
 * then replays, and a failed attempt (status ≥ 400) leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import { DomainError } from '../core/errors';
import type { Principal } from '../core/types';
import type { Db } from './pool';
import { idempotencyRepository } from './repositories/idempotency';

export interface Outcome {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const KEY = /^[\x21-\x7e]{1,255}$/;

/** The scope keys live in: one credential's keys never collide with another's. */
export const idempotencyScope = (p: Principal | null) =>
  !p ? 'anonymous' : p.kind === 'admin' ? 'admin' : p.kind === 'tenant' ? `tenant:${p.tenantId}` : `user:${p.tenantId}:${p.userId}`;

/** A fingerprint of what was asked, so a reused key with another request is caught. */
export const fingerprintOf = (...parts: string[]) => createHash('sha256').update(parts.join('\n')).digest('hex');

/** Throws a 400 unless the key is 1–255 visible ASCII characters. */
export function checkKey(key: string, path: string): void {
  if (!KEY.test(key)) {
    throw new DomainError('validation-failed', 'Idempotency-Key must be 1 to 255 visible ASCII characters', {
      errors: [{ path, message: 'must be 1 to 255 visible ASCII characters' }],
    });
  }
}

/** Runs `work` at most once per (scope, key); a repeat gets the first outcome back. */
export async function runIdempotent(db: Db, scope: string, key: string, fingerprint: string, work: () => Promise<Outcome>): Promise<{ outcome: Outcome; replayed: boolean }> {
  return db.ambientTx<{ outcome: Outcome; replayed: boolean }>(async (q) => {
    const existing = await idempotencyRepository.claim(q, scope, key, fingerprint);
    if (existing) {
      if (existing.fingerprint !== fingerprint) throw new DomainError('idempotency-key-reuse', 'this Idempotency-Key was used with a different request');
      const outcome = { status: existing.status ?? 200, headers: existing.headers ?? {}, body: existing.body ?? '' };
      return { commit: false, value: { outcome, replayed: true } };
    }
    const outcome = await work();
    if (outcome.status >= 400) return { commit: false, value: { outcome, replayed: false } };
    await idempotencyRepository.complete(q, scope, key, outcome.status, outcome.headers, outcome.body);
    return { commit: true, value: { outcome, replayed: false } };
  });
}
