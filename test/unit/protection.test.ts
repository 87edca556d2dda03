/** Pure parts of the protection: counted addresses, and admission of work in progress per user and tenant. */
import { describe, expect, it } from 'vitest';
import { KeyedLimiter } from '../../server/core/admission';
import type { Limits } from '../../server/core/limits';
import type { RateCounter } from '../../server/core/ports';
import { clientAddress, normalizeAddress, protectionService } from '../../server/core/services/protection';
import { loadConfig } from '../../server/config';

describe('counted addresses', () => {
  it('unwrap IPv4-mapped IPv6 and strip ports, brackets and zones', () => {
    expect(normalizeAddress('::ffff:127.0.0.2')).toBe('127.0.0.2');
    expect(normalizeAddress('203.0.113.9:51234')).toBe('203.0.113.9');
    expect(normalizeAddress('[2001:db8::1]:443')).toBe('2001:db8:0:0::/64');
    expect(normalizeAddress('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });

  it('count every spelling of one IPv6 /64 as one address, and another /64 apart', () => {
    const one = ['2001:db8:1:2:a:b:c:d', '2001:DB8:1:2::d', '2001:0db8:0001:0002:ffff::', '2001:db8:1:2::'];
    expect(new Set(one.map(normalizeAddress))).toEqual(new Set(['2001:db8:1:2::/64']));
    expect(normalizeAddress('2001:db8::a:b:c:d')).toBe('2001:db8:0:0::/64');
    expect(normalizeAddress('2001:db8::a:b:c:d')).toBe(normalizeAddress('2001:db8:0:0:1:2:3:4'));
    expect(normalizeAddress('2001:db8:1:3::1')).not.toBe(normalizeAddress('2001:db8:1:2::1'));
    expect(normalizeAddress('::1')).toBe('0:0:0:0::/64');
  });

  it('believe X-Forwarded-For only for the trusted hops, read from the right', () => {
    expect(clientAddress('10.0.0.1', '6.6.6.6, 203.0.113.9', 0)).toBe('10.0.0.1');
    expect(clientAddress('10.0.0.1', '6.6.6.6, 203.0.113.9', 1)).toBe('203.0.113.9');
    expect(clientAddress('10.0.0.1', ['6.6.6.6', '203.0.113.9, 10.0.0.2'], 2)).toBe('203.0.113.9');
    expect(clientAddress('10.0.0.1', '[2001:db8::7]:1234', 1)).toBe('2001:db8:0:0::/64');
  });
});

describe('KeyedLimiter', () => {
  it('admits up to the limit, queues a bounded number for a bounded time, and hands a slot on', async () => {
    const l = new KeyedLimiter(2, 1, 200);
    const a = l.acquire('k') as () => void;
    const b = l.acquire('k') as () => void;
    const queued = l.acquire('k');
    expect(queued).toBeInstanceOf(Promise);
    expect(l.acquire('k')).toBeNull(); // the queue is full
    a();
    const c = (await queued) as () => void;
    expect(typeof c).toBe('function');
    expect(l.inUse('k')).toBe(2);
    const late = l.acquire('k');
    expect(await late).toBeNull(); // waited 200 ms, nobody left
    b();
    c();
    c(); // idempotent
    expect(l.inUse('k')).toBe(0);
  });

  it('takes a slot without a queue with tryTake and gives it back with give', () => {
    const l = new KeyedLimiter(2);
    expect(l.tryTake('k')).toBe(true);
    const r = l.acquire('k') as () => void;
    expect(l.tryTake('k')).toBe(false);
    expect(l.acquire('k')).toBeNull();
    expect(l.tryTake('j')).toBe(true);
    l.give('k');
    expect(l.inUse('k')).toBe(1);
    r();
    expect(l.inUse('k')).toBe(0);
    const open = new KeyedLimiter(0);
    expect(open.tryTake('k')).toBe(true);
    open.give('k');
    expect(open.inUse('k')).toBe(0);
  });
});

describe('admission of a user and its tenant', () => {
  const limits: Limits = loadConfig({ INFLIGHT_PER_USER: '8', INFLIGHT_PER_TENANT: '10' }).limits;
  const unlimited = { allowed: true, limit: 0, remaining: 0, resetMs: 0 };
  const never: RateCounter = { take: async () => unlimited, takeMany: async (takes) => takes.map(() => unlimited) };
  const user = (userId: string) => ({ kind: 'user' as const, tenantId: 't', userId, name: userId, role: 'member' as const, tokenId: userId, expiresAt: Date.now() + 60_000 });

  it("one user firing many requests never takes the tenant's other slots while it waits for its own", async () => {
    const protection = protectionService(limits, never);
    const turns = Array.from({ length: 20 }, () => (async () => protection.enter(user('greedy')))().catch((e) => e));
    // Eight run; the rest wait for greedy's own turns and take no tenant slot meanwhile.
    const other = await protection.enter(user('patient'));
    expect(typeof other).toBe('function');
    const another = await protection.enter(user('third'));
    expect(typeof another).toBe('function');
    other();
    another();
    const settled = await Promise.all(turns);
    const refused = settled.filter((t) => typeof t !== 'function');
    expect(refused.length).toBeGreaterThan(0);
    for (const e of refused) expect(e.extra.limit).toBe('inflight.user');
    for (const t of settled) if (typeof t === 'function') t();
  });

  it('refuses past the tenant limit once its queue is full, and counts a refused user turn as given back', async () => {
    const protection = protectionService(limits, never);
    const held = [];
    for (let i = 0; i < 10; i++) held.push(await protection.enter(user(`u${i}`)));
    const waiting = Array.from({ length: 10 }, (_, i) => (async () => protection.enter(user(`w${i}`)))());
    await expect((async () => protection.enter(user('late')))()).rejects.toMatchObject({ code: 'too-many-concurrent', extra: { limit: 'inflight.tenant' } });
    for (const r of held) r();
    for (const w of await Promise.all(waiting)) w();
  });

  it("counts a user's live connections against its cap the same through openSession and enterSession/closeSession", () => {
    const protection = protectionService(loadConfig({ SOCKETS_PER_USER: '3' }).limits, never);
    const u = user('live');
    const leave = protection.openSession(u);
    protection.enterSession(u);
    protection.enterSession(u);
    expect(() => protection.enterSession(u)).toThrow(expect.objectContaining({ code: 'too-many-connections', extra: expect.objectContaining({ limit: 'sockets.user', max: 3 }) }));
    expect(() => protection.openSession(u)).toThrow(expect.objectContaining({ code: 'too-many-connections' }));
    expect(() => protection.enterSession(user('other'))).not.toThrow();
    leave();
    leave(); // idempotent: gives back one slot
    protection.enterSession(u);
    expect(() => protection.enterSession(u)).toThrow(expect.objectContaining({ code: 'too-many-connections' }));
    protection.closeSession(u);
    protection.closeSession(u);
    expect(typeof protection.openSession(u)).toBe('function');
    protection.enterSession(u);
    expect(() => protection.enterSession(u)).toThrow(expect.objectContaining({ code: 'too-many-connections' }));
  });

  it('answers 503 overloaded at once while the database queue is past its bound', async () => {
    const protection = protectionService(limits, never, () => true);
    expect(() => protection.enter(user('anyone'))).toThrow(expect.objectContaining({ code: 'overloaded', status: 503, extra: expect.objectContaining({ limit: 'db.queue', retryAfter: 1 }) }));
  });
});
