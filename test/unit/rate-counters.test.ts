/**
 * The shared rate counters against the machine's Redis: several budgets in
 * one count, shared by every node's counters, refused from memory once spent,
 * and counted in memory while Redis cannot answer.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { RateCounters } from '../../server/bus/rate-limits';

const REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const warnings: unknown[] = [];
const log = { info() {}, warn: (...a: unknown[]) => void warnings.push(a), error() {}, debug() {} };
const opened: RateCounters[] = [];
const counters = (url: string | undefined, prefix: string) => {
  const c = new RateCounters(url, { ip: { points: 5, durationSec: 10 }, user: { points: 3, durationSec: 10 }, open: { points: 0, durationSec: 10 } }, log, prefix);
  opened.push(c);
  return c;
};
/** Until the counters' own Redis connection is ready (before that they count in memory, by design). */
const ready = async (c: RateCounters) => {
  for (let i = 0; i < 100 && (c as unknown as { redis: { status: string } }).redis.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 20));
};

afterAll(async () => {
  for (const c of opened) await c.close();
});

describe('RateCounters', () => {
  it('counts several budgets in one call, shared by every node, and refuses past each budget with its window', async () => {
    const prefix = `test:rl:${randomUUID()}`;
    const [a, b] = [counters(REDIS, prefix), counters(REDIS, prefix)];
    await Promise.all([ready(a), ready(b)]);
    const takes = [{ bucket: 'ip', key: '203.0.113.9' }, { bucket: 'user', key: 'u-1' }, { bucket: 'open', key: 'x' }];
    const first = await a.takeMany(takes);
    expect(first.map((v) => [v.allowed, v.limit, v.remaining])).toEqual([[true, 5, 4], [true, 3, 2], [true, 0, 0]]);
    expect(first[0]!.resetMs).toBeGreaterThan(9_000);
    expect(first[0]!.resetMs).toBeLessThanOrEqual(10_000);
    // The other node counts on from the same counts.
    const second = await b.takeMany(takes);
    expect(second.map((v) => v.remaining)).toEqual([3, 1, 0]);
    expect((await a.takeMany(takes)).map((v) => v.allowed)).toEqual([true, true, true]); // user: 3 of 3
    const past = await b.takeMany(takes);
    expect(past.map((v) => [v.allowed, v.remaining])).toEqual([[true, 1], [false, 0], [true, 0]]);
    expect(past[1]!.resetMs).toBeGreaterThan(0);
    // Points: one take of 2 spends the address's last one and more.
    expect(await a.take('ip', '203.0.113.9', 2)).toMatchObject({ allowed: false, limit: 5, remaining: 0 });
    // An unknown or unlimited bucket never refuses.
    expect(await a.take('nothing', 'k')).toMatchObject({ allowed: true, limit: 0 });
  });

  it('refuses a spent key from memory until its window ends, without asking Redis', async () => {
    const prefix = `test:rl:${randomUUID()}`;
    const c = counters(REDIS, prefix);
    await ready(c);
    for (let i = 0; i < 3; i++) expect((await c.take('user', 'u-2')).allowed).toBe(true);
    expect((await c.take('user', 'u-2')).allowed).toBe(false);
    // Redis now says nothing is spent, but this node remembers the key is past its budget until the window ends.
    const redis = (c as unknown as { redis: { del(k: string): Promise<number> } }).redis;
    expect(await redis.del(`${prefix}:user:u-2`)).toBe(1);
    const again = await c.take('user', 'u-2');
    expect(again.allowed).toBe(false);
    expect(again.resetMs).toBeGreaterThan(0);
    // Another key of the same bucket is counted in Redis as before.
    expect(await c.take('user', 'u-3')).toMatchObject({ allowed: true, remaining: 2 });
  });

  it('counts in memory while Redis does not answer, with the same budgets', async () => {
    const c = counters('redis://127.0.0.1:1', `test:rl:${randomUUID()}`);
    const verdicts = [];
    for (let i = 0; i < 6; i++) verdicts.push(await c.takeMany([{ bucket: 'ip', key: '198.51.100.1' }]));
    expect(verdicts.map(([v]) => v!.allowed)).toEqual([true, true, true, true, true, false]);
    expect(verdicts[5]![0]).toMatchObject({ limit: 5, remaining: 0 });
    // Without Redis at all: the same, in memory.
    const alone = counters(undefined, `test:rl:${randomUUID()}`);
    for (let i = 0; i < 3; i++) expect((await alone.take('user', 'u')).allowed).toBe(true);
    expect((await alone.take('user', 'u')).allowed).toBe(false);
  });
});
