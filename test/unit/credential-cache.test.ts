/** The bounded memory of checked credentials: failed key lookups never evict a real key; tokens are kept until they expire, within bounds. */
import { describe, expect, it } from 'vitest';
import { CredentialCache } from '../../server/core/services/credential-cache';
import type { Principal } from '../../server/core/types';

const user = (userId: string): Principal => ({ kind: 'user', tenantId: 't1', userId, name: userId, role: 'member' });

describe('CredentialCache', () => {
  it('keeps real keys while any number of unknown keys are looked up', () => {
    const cache = new CredentialCache({ maxKeys: 100, maxUnknownKeys: 10 });
    cache.rememberKey('real', 't1');
    for (let i = 0; i < 20_000; i++) cache.rememberKey(`guess-${i}`, null);
    expect(cache.keyTenant('real')).toBe('t1');
    // Recent misses are remembered (no database round trip for a retried bad key), old ones forgotten.
    expect(cache.keyTenant('guess-19999')).toBeNull();
    expect(cache.keyTenant('guess-0')).toBeUndefined();
    expect(cache.keyTenant('never-seen')).toBeUndefined();
  });

  it('evicts the least recently used real key past its bound, never all of them', () => {
    const cache = new CredentialCache({ maxKeys: 100 });
    for (let i = 0; i < 150; i++) {
      cache.rememberKey(`k${i}`, `t${i}`);
      cache.keyTenant('k0'); // k0 in steady use
    }
    expect(cache.keyTenant('k0')).toBe('t0');
    expect(cache.keyTenant('k1')).toBeUndefined();
    expect(cache.keyTenant('k149')).toBe('t149');
  });

  it('remembers a verified token until it expires, and not at all once expired', async () => {
    const cache = new CredentialCache();
    cache.rememberToken('a.b.c', user('u1'), Date.now() + 60_000);
    cache.rememberToken('d.e.f', user('u2'), Date.now() - 1);
    cache.rememberToken('g.h.i', user('u3'), Date.now() + 50);
    expect(cache.token('a.b.c')).toEqual(user('u1'));
    expect(cache.token('d.e.f')).toBeUndefined();
    expect(cache.token('g.h.i')).toEqual(user('u3'));
    await new Promise((r) => setTimeout(r, 80));
    expect(cache.token('g.h.i')).toBeUndefined();
  });

  it('bounds tokens by count and by bytes', () => {
    const cache = new CredentialCache({ maxTokens: 1_000, maxTokenBytes: 100_000 });
    for (let i = 0; i < 100; i++) cache.rememberToken(`${i}.`.padEnd(10_000, 'x'), user(`u${i}`), Date.now() + 60_000);
    let kept = 0;
    for (let i = 0; i < 100; i++) if (cache.token(`${i}.`.padEnd(10_000, 'x'))) kept++;
    expect(kept).toBeLessThanOrEqual(10);
    expect(kept).toBeGreaterThan(0);
  });
});
