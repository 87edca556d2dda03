/**
 * Rate counters shared by every node through Redis (rate-limiter-flexible's
 * fixed windows, one Lua call per take), or this node's own without Redis.
 * While Redis is down each node counts alone (the insurance limiter), so a
 * Redis outage neither stalls requests nor lifts the limits.
 */
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger, RateCounter, RateVerdict } from '../core/ports';

/** A budget: `points` per `durationSec`-second window. */
export interface BucketSpec {
  points: number;
  durationSec: number;
}

const UNLIMITED: RateVerdict = { allowed: true, limit: 0, remaining: 0, resetMs: 0 };

/** Rate counters over named buckets; a bucket with 0 points is unlimited. */
export class RateCounters implements RateCounter {
  private readonly limiters = new Map<string, { spec: BucketSpec; limiter: RateLimiterAbstract }>();
  private readonly redis: Redis | null;
  private warned = false;

  constructor(redisUrl: string | undefined, buckets: Record<string, BucketSpec>, private readonly log: Logger, keyPrefix = 'sw:rl') {
    // Its own connection, failing fast: a request must never wait for Redis to come back.
    // Auto-pipelined: the counts of concurrent requests go to Redis in one write.
    this.redis = redisUrl
      ? new Redis(redisUrl, { enableOfflineQueue: false, enableAutoPipelining: true, maxRetriesPerRequest: 1, commandTimeout: 500, retryStrategy: (n) => Math.min(n * 200, 2_000) })
      : null;
    this.redis?.on('error', () => {}); // the bus logs Redis outages; counting goes on in memory
    for (const [name, spec] of Object.entries(buckets)) {
      if (spec.points <= 0) continue;
      const common = { points: spec.points, duration: spec.durationSec, keyPrefix: `${keyPrefix}:${name}` };
      const memory = new RateLimiterMemory(common);
      const limiter = this.redis
        ? new RateLimiterRedis({
            ...common,
            storeClient: this.redis,
            rejectIfRedisNotReady: true,
            insuranceLimiter: memory,
            // A key past its budget is refused from memory until its window ends: a flood costs no Redis calls.
            inMemoryBlockOnConsumed: spec.points + 1,
          })
        : memory;
      this.limiters.set(name, { spec, limiter });
    }
  }

  async take(bucket: string, key: string, points = 1): Promise<RateVerdict> {
    const entry = this.limiters.get(bucket);
    if (!entry) return UNLIMITED;
    try {
      const res = await entry.limiter.consume(key, points);
      return { allowed: true, limit: entry.spec.points, remaining: res.remainingPoints, resetMs: res.msBeforeNext };
    } catch (err) {
      if (err instanceof RateLimiterRes) return { allowed: false, limit: entry.spec.points, remaining: 0, resetMs: err.msBeforeNext };
      return this.failOpen(err, entry.spec);
    }
  }

  /** Only the insurance limiter itself failing lands here (it should not): let the request through, once logged. */
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
