/**
 * Concurrency admission: how many requests of one key (a tenant, a user, a
 * socket) a node works on at once. Past the limit a request waits briefly in
 * a short queue, or is refused at once: a client that fires a thousand
 * commands without waiting gets 429s, not a thousand pool connections.
 */

/** Releases a slot taken with `KeyedLimiter.acquire` (idempotent). */
export type Release = () => void;

interface Waiter {
  resolve(release: Release | null): void;
  timer: NodeJS.Timeout;
}

/** Per-key counting semaphores with a bounded, time-limited queue. A limit of 0 admits everything. */
export class KeyedLimiter {
  private readonly active = new Map<string, number>();
  private readonly queues = new Map<string, Waiter[]>();

  /**
   * @param limit requests of one key worked on at once
   * @param maxQueued requests of one key that may wait for a slot (0: refuse at once)
   * @param maxWaitMs how long one may wait
   */
  constructor(
    readonly limit: number,
    private readonly maxQueued = 0,
    private readonly maxWaitMs = 0,
  ) {}

  /** A slot for `key`, or null when it is full and the queue is too (or the wait ran out). */
  acquire(key: string): Promise<Release | null> | Release | null {
    if (this.limit <= 0) return NOOP;
    const n = this.active.get(key) ?? 0;
    if (n < this.limit) return this.take(key);
    const queue = this.queues.get(key) ?? [];
    if (queue.length >= this.maxQueued || this.maxWaitMs <= 0) return null;
    this.queues.set(key, queue);
    return new Promise<Release | null>((resolve) => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          const q = this.queues.get(key);
          const at = q?.indexOf(waiter) ?? -1;
          if (q && at >= 0) q.splice(at, 1);
          if (q?.length === 0) this.queues.delete(key);
          resolve(null);
        }, this.maxWaitMs),
      };
      queue.push(waiter);
    });
  }

  /** Requests of `key` being worked on now. */
  inUse(key: string): number {
    return this.active.get(key) ?? 0;
  }

  /**
   * A slot for `key` without waiting, for a limiter without a queue: false
   * when it is full. The caller gives it back with `give(key)`, once (no
   * release closure is kept per slot).
   */
  tryTake(key: string): boolean {
    if (this.limit <= 0) return true;
    const n = this.active.get(key) ?? 0;
    if (n >= this.limit) return false;
    this.active.set(key, n + 1);
    return true;
  }

  /** Gives back a slot of `key` taken with `tryTake`; a waiter in line gets it. */
  give(key: string): void {
    if (this.limit <= 0) return;
    const next = this.queues.get(key)?.shift();
    if (next) {
      // The slot passes straight to the next in line: the count stays.
      if (this.queues.get(key)!.length === 0) this.queues.delete(key);
      clearTimeout(next.timer);
      next.resolve(this.handOver(key));
      return;
    }
    const left = (this.active.get(key) ?? 1) - 1;
    if (left <= 0) this.active.delete(key);
    else this.active.set(key, left);
  }

  private take(key: string): Release {
    this.active.set(key, (this.active.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.give(key);
    };
  }

  /** A release for a slot whose count was carried over from the previous holder. */
  private handOver(key: string): Release {
    this.active.set(key, (this.active.get(key) ?? 0) - 1);
    return this.take(key);
  }
}

const NOOP: Release = () => {};
