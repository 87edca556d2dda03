/**
 * Idempotency-Key for POST and PATCH. The key is claimed inside the same
 * transaction as the work, so the stored response and the change commit
 * together: a concurrent duplicate waits on the key's row and then replays,
 * and a failed request (any 4xx/5xx) leaves nothing behind, key included.
 */
import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { DomainError } from '../../core/errors';
import type { Principal } from '../../core/types';
import type { Db } from '../../db/pool';
import { idempotencyRepository } from '../../db/repositories/idempotency';
import type { AuthEnv } from './auth';

const KEY = /^[\x21-\x7e]{1,255}$/;
const KEPT_HEADERS = ['content-type', 'etag', 'location'];

const scopeOf = (p: Principal | null) =>
  !p ? 'anonymous' : p.kind === 'admin' ? 'admin' : p.kind === 'tenant' ? `tenant:${p.tenantId}` : `user:${p.tenantId}:${p.userId}`;

/** Wraps POST/PATCH requests that carry Idempotency-Key in one ambient transaction. */
export function idempotency(db: Db): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const key = c.req.header('Idempotency-Key');
    if (key === undefined || (c.req.method !== 'POST' && c.req.method !== 'PATCH')) return next();
    if (!KEY.test(key)) {
      throw new DomainError('validation-failed', 'Idempotency-Key must be 1 to 255 visible ASCII characters', {
        errors: [{ path: 'header.Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' }],
      });
    }
    const body = await c.req.text();
    const fingerprint = createHash('sha256').update(`${c.req.method} ${c.req.path}\n${body}`).digest('hex');
    const scope = scopeOf(c.get('principal'));

    const replay = await db.ambientTx(async (q) => {
      const existing = await idempotencyRepository.claim(q, scope, key, fingerprint);
      if (existing) {
        if (existing.fingerprint !== fingerprint) {
          throw new DomainError('idempotency-key-reuse', 'this Idempotency-Key was used with a different request');
        }
        return { commit: false, value: existing };
      }
      await next();
      const res = c.res;
      if (res.status >= 400) return { commit: false, value: null };
      const headers: Record<string, string> = {};
      for (const h of KEPT_HEADERS) {
        const v = res.headers.get(h);
        if (v) headers[h] = v;
      }
      await idempotencyRepository.complete(q, scope, key, res.status, headers, await res.clone().text());
      return { commit: true, value: null };
    });
    if (replay && replay.status !== null) {
      c.res = new Response(replay.body, { status: replay.status, headers: { ...replay.headers, 'Idempotent-Replayed': 'true' } });
    }
  };
}
