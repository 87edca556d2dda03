/** The bounded memory of checked credentials: failed key lookups never evict a real key; tokens are kept until they expire, within bounds. */
import { describe, expect, it } from 'vitest';
import { CredentialCache } from '../../server/core/services/credential-cache';

const user = (userId: string, expiresAt = Date.now() + 60_000) => ({ kind: 'user' as const, tenantId: 't1', userId, name: userId, role: 'member' as const, tokenId: `tok-${userId}`, expiresAt });
const key = (keyId: string, tenantId = 't1') => ({ kind: 'tenant' as const, tenantId, keyId, expiresAt: null });

describe('CredentialCache', () => {
  it('keeps real keys while any number of unknown keys are looked up', () => {
    const cache = new CredentialCache({ maxKeys: 100, maxUnknownKeys: 10 });
    cache.rememberKey('real', key('k1'));
    for (let i = 0; i < 20_000; i++) cache.rememberKey(`guess-${i}`, null);
    expect(cache.key('real')).toEqual(key('k1'));
    // Recent misses are remembered (no database round trip for a retried bad key), old ones forgotten.
    expect(cache.key('guess-19999')).toBeNull();
    expect(cache.key('guess-0')).toBeUndefined();
    expect(cache.key('never-seen')).toBeUndefined();
  });

  it('evicts the least recently used real key past its bound, never all of them', () => {
    const cache = new CredentialCache({ maxKeys: 100 });
    for (let i = 0; i < 150; i++) {
      cache.rememberKey(`h${i}`, key(`k${i}`, `t${i}`));
      cache.key('h0'); // h0 in steady use
    }
    expect(cache.key('h0')?.tenantId).toBe('t0');
    expect(cache.key('h1')).toBeUndefined();
    expect(cache.key('h149')?.tenantId).toBe('t149');
  });

  it('forgets a revoked key by id, and every key when told to', async () => {
    const cache = new CredentialCache();
    cache.rememberKey('a', key('k1'));
    cache.rememberKey('b', key('k2'));
    cache.forgetKey('k1');
    expect(cache.key('a')).toBeUndefined();
    expect(cache.key('b')).toEqual(key('k2'));
    cache.rememberKey('c', key('k3'), 20);
    await new Promise((r) => setTimeout(r, 40));
    expect(cache.key('c'), 'a shorter trust than the default ends on time').toBeUndefined();
    cache.forgetKeys();
    expect(cache.key('b')).toBeUndefined();
  });

  it('remembers a verified token until it expires, and not at all once expired', async () => {
    const cache = new CredentialCache();
    const u1 = user('u1');
    // A second of life: enough that the checks right after remembering it run before it expires on a loaded machine.
    const u3 = user('u3', Date.now() + 1_000);
    cache.rememberToken('a.b.c', u1);
    cache.rememberToken('d.e.f', user('u2', Date.now() - 1));
    cache.rememberToken('g.h.i', u3);
    expect(cache.token('a.b.c')).toEqual(u1);
    expect(cache.token('d.e.f')).toBeUndefined();
    expect(cache.token('g.h.i')).toEqual(u3);
    await new Promise((r) => setTimeout(r, 1_050));
    expect(cache.token('g.h.i')).toBeUndefined();
  });

  it('bounds tokens by count and by bytes', () => {
    const cache = new CredentialCache({ maxTokens: 1_000, maxTokenBytes: 100_000 });
    for (let i = 0; i < 100; i++) cache.rememberToken(`${i}.`.padEnd(10_000, 'x'), user(`u${i}`));
    let kept = 0;
    for (let i = 0; i < 100; i++) if (cache.token(`${i}.`.padEnd(10_000, 'x'))) kept++;
    expect(kept).toBeLessThanOrEqual(10);
    expect(kept).toBeGreaterThan(0);
  });
});
