/**
 * How fast one Yjs connection may go: token buckets for its messages, its
 * update bytes and its presence changes, and reading paused while it waits
 * for tokens or while too much of what it sent waits to be handled.
 *
 * Throttled, not refused: a client over its rate is read more slowly (TCP
 * pushes back on it), so an honest fast typist is slowed but never loses an
 * edit or falls out of sync. Hand-written rather than rate-limiter-flexible,
 * which keys shared fixed windows (per user, per IP): this is one object per
 * connection, consulted synchronously on every message, that must say how long
 * to wait.
 */
import type { WebSocket } from 'ws';
import type { YjsLimits } from './limits';

// Stop reading with this many messages waiting (or maxQueuedBytes), resume once few are left.
const HIGH_WATER = 64;
const LOW_WATER = 8;

/** A token bucket: `capacity` tokens at most, refilled at `perSecond`. */
export class TokenBucket {
  private tokens: number;
  private at = performance.now();

  constructor(readonly capacity: number, private readonly perSecond: number) {
    this.tokens = capacity;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.at) * this.perSecond) / 1000);
    this.at = now;
  }

  /** Milliseconds until `need` tokens (at most the capacity) are there; 0 when they are now. */
  waitFor(need: number): number {
    this.refill();
    const short = Math.min(need, this.capacity) - this.tokens;
    return short <= 0 ? 0 : Math.ceil((short * 1000) / this.perSecond);
  }

  /** Takes `cost` tokens; the balance may go below zero, a debt that later payments wait out. */
  take(cost: number): void {
    this.refill();
    this.tokens -= cost;
  }
}

/** One connection's budgets and flow control. */
export class Pacer {
  /** Messages of any kind. */
  readonly messages: TokenBucket;
  /** Bytes of document updates, and of answers the client asks for beyond the first sync. */
  readonly bytes: TokenBucket;
  /** Presence changes applied (the rest are coalesced). */
  readonly presence: TokenBucket;
  private queued = 0;
  private queuedBytes = 0;
  private waiting = false;
  private closed = false;
  private wake: (() => void) | null = null;
  private presenceDue: (() => void) | null = null;
  private presenceTimer: NodeJS.Timeout | null = null;

  constructor(private readonly ws: WebSocket, private readonly limits: YjsLimits) {
    this.messages = new TokenBucket(limits.messageBurst, limits.messagesPerSecond);
    this.bytes = new TokenBucket(limits.updateByteBurst, limits.updateBytesPerMinute / 60);
    this.presence = new TokenBucket(limits.presenceBurst, limits.presencePerSecond);
  }

  /** A message of `size` bytes arrived and waits to be handled. */
  received(size: number): void {
    this.queued++;
    this.queuedBytes += size;
    this.flow();
  }

  /** A message of `size` bytes was handled (or dropped). */
  handled(size: number): void {
    this.queued--;
    this.queuedBytes -= size;
    this.flow();
  }

  /**
   * Takes `cost` from `bucket`, first waiting (reading paused) until it holds
   * `need`. False when the connection closed while waiting: what was still
   * waiting for tokens is dropped (a stock client sends it again on its next
   * connection's sync), or closing would be a way around the rate.
   */
  async pay(bucket: TokenBucket, cost: number, need = cost): Promise<boolean> {
    for (let wait = bucket.waitFor(need); wait > 0; wait = bucket.waitFor(need)) {
      if (!(await this.sleep(wait))) return false;
    }
    bucket.take(cost);
    return true;
  }

  /** Waits `ms` with reading paused; false when the connection closed meanwhile (or before). */
  async sleep(ms: number): Promise<boolean> {
    if (this.closed) return false;
    this.waiting = true;
    this.flow();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = null;
    this.waiting = false;
    this.flow();
    return !this.closed;
  }

  /**
   * Runs a presence change now if a presence token is there, else once one is;
   * a change waiting then is replaced by a newer one (presence is a state, so
   * only the latest matters). Never pauses reading: updates keep flowing.
   */
  coalesce(apply: () => void): void {
    if (this.closed) return;
    if (!this.presenceTimer && this.presence.waitFor(1) === 0) {
      this.presence.take(1);
      return apply();
    }
    this.presenceDue = apply;
    this.presenceTimer ??= setTimeout(() => {
      this.presenceTimer = null;
      const due = this.presenceDue;
      this.presenceDue = null;
      if (due && !this.closed) this.coalesce(due);
    }, this.presence.waitFor(1));
  }

  /** The connection closed: wakes a payment that waits, which then fails, and drops a waiting presence change. */
  close(): void {
    this.closed = true;
    this.wake?.();
    if (this.presenceTimer) clearTimeout(this.presenceTimer);
    this.presenceTimer = null;
    this.presenceDue = null;
  }

  private flow(): void {
    const ws = this.ws;
    if (this.waiting || this.queued >= HIGH_WATER || this.queuedBytes >= this.limits.maxQueuedBytes) {
      if (!ws.isPaused) ws.pause();
    } else if (ws.isPaused && this.queued <= LOW_WATER && this.queuedBytes <= this.limits.maxQueuedBytes / 4) {
      ws.resume();
    }
  }
}
