/**
 * Rate counters shared by every node through Redis (fixed windows, counted by
 * one Lua call per request however many budgets it takes from), or this
 * node's own without Redis. While Redis is down each node counts alone (in
 * memory), so a Redis outage neither stalls requests nor lifts the limits.
 */
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Logger, RateCounter, RateTake, RateVerdict } from '../core/ports';

/** A budget: `points` per `durationSec`-second window. */
export interface BucketSpec {
  points: number;
  durationSec: number;
}

const UNLIMITED: RateVerdict = { allowed: true, limit: 0, remaining: 0, resetMs: 0 };

/**
 * For each key (with its points and window length in ARGV, in pairs): start
 * its window if it has none, add the points, and return what it has taken
 * and the window's milliseconds left. The same keys and the same counting as
 * rate-limiter-flexible's RateLimiterRedis, for several keys in one call.
 * Every key must live on one Redis (no Redis Cluster).
 */
const TAKE_MANY = `
local out = {}
for i = 1, #KEYS do
  local duration = tonumber(ARGV[2 * i])
  redis.call('set', KEYS[i], 0, 'EX', duration, 'NX')
  out[2 * i - 1] = redis.call('incrby', KEYS[i], ARGV[2 * i - 1])
  local ttl = redis.call('pttl', KEYS[i])
  if ttl == -1 then
    redis.call('expire', KEYS[i], duration)
    ttl = 1000 * duration
  end
  out[2 * i] = ttl
end
return out`;

type TakeManyRedis = Redis & { slotwiseRateTake(keyCount: number, ...keysAndArgs: (string | number)[]): Promise<number[]> };

interface Bucket {
  spec: BucketSpec;
  prefix: string;
  /** Counts while Redis cannot (and every count without Redis). */
  memory: RateLimiterMemory;
}

/** Rate counters over named buckets; a bucket with 0 points is unlimited. */
export class RateCounters implements RateCounter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly redis: TakeManyRedis | null;
  /** Keys past their budget, until their window ends: refused from memory, so a flood costs no Redis calls. */
  private readonly spent = new LRUCache<string, number>({ max: 100_000 });
  private warned = false;

  constructor(redisUrl: string | undefined, buckets: Record<string, BucketSpec>, private readonly log: Logger, keyPrefix = 'sw:rl') {
    // Its own connection, failing fast: a request must never wait for Redis to come back.
    // Auto-pipelined: the counts of concurrent requests go to Redis in one write.
    this.redis = redisUrl
      ? (new Redis(redisUrl, { enableOfflineQueue: false, enableAutoPipelining: true, maxRetriesPerRequest: 1, commandTimeout: 500, retryStrategy: (n) => Math.min(n * 200, 2_000) }) as TakeManyRedis)
      : null;
    this.redis?.on('error', () => {}); // the bus logs Redis outages; counting goes on in memory
    this.redis?.defineCommand('slotwiseRateTake', { lua: TAKE_MANY });
    for (const [name, spec] of Object.entries(buckets)) {
      if (spec.points <= 0) continue;
      const prefix = `${keyPrefix}:${name}`;
      this.buckets.set(name, { spec, prefix, memory: new RateLimiterMemory({ points: spec.points, duration: spec.durationSec, keyPrefix: prefix }) });
    }
  }

  async take(bucket: string, key: string, points = 1): Promise<RateVerdict> {
    return (await this.takeMany([{ bucket, key, points }]))[0]!;
  }

  async takeMany(takes: readonly RateTake[]): Promise<RateVerdict[]> {
    const out: RateVerdict[] = new Array(takes.length);
    // The takes to count, each with its bucket, its Redis key and its points, looked up once.
    const counted: { i: number; b: Bucket; key: string; points: number }[] = [];
    const now = Date.now();
    takes.forEach((t, i) => {
      const b = this.buckets.get(t.bucket);
      if (!b) return void (out[i] = UNLIMITED);
      const key = `${b.prefix}:${t.key}`;
      const until = this.spent.get(key);
      if (until !== undefined && until > now) return void (out[i] = { allowed: false, limit: b.spec.points, remaining: 0, resetMs: until - now });
      counted.push({ i, b, key, points: t.points ?? 1 });
    });
    if (counted.length === 0) return out;
    if (this.redis?.status === 'ready') {
      try {
        const res = await this.redis.slotwiseRateTake(counted.length, ...counted.map((c) => c.key), ...counted.flatMap((c) => [c.points, c.b.spec.durationSec]));
        counted.forEach(({ i, b, key }, j) => {
          const taken = Number(res[2 * j]);
          const resetMs = Math.max(0, Number(res[2 * j + 1]));
          if (taken > b.spec.points) this.spent.set(key, Date.now() + resetMs);
          out[i] = { allowed: taken <= b.spec.points, limit: b.spec.points, remaining: Math.max(0, b.spec.points - taken), resetMs };
        });
        return out;
      } catch {
        // Redis failed this call: counted in memory below, as while it is down.
      }
    }
    await Promise.all(counted.map(async ({ i, b, points }) => (out[i] = await this.inMemory(b, takes[i]!.key, points))));
    return out;
  }

  private async inMemory(b: Bucket, key: string, points: number): Promise<RateVerdict> {
    try {
      const res = await b.memory.consume(key, points);
      return { allowed: true, limit: b.spec.points, remaining: res.remainingPoints, resetMs: res.msBeforeNext };
    } catch (err) {
      if (err instanceof RateLimiterRes) return { allowed: false, limit: b.spec.points, remaining: 0, resetMs: err.msBeforeNext };
      return this.failOpen(err, b.spec);
    }
  }

  /** Only the memory counter itself failing lands here (it should not): let the request through, once logged. */
  private failOpen(err: unknown, spec: BucketSpec): RateVerdict {
    if (!this.warned) {
      this.warned = true;
      this.log.warn({ err: (err as Error)?.message ?? String(err) }, 'rate limiter failed; requests pass unlimited');
    }
    return { allowed: true, limit: spec.points, remaining: spec.points, resetMs: 0 };
  }

  /** Closes the Redis connection. */
  async close(): Promise<void> {
    this.redis?.disconnect();
  }
}
