/**
 * Cross-node messages. Every message is an envelope `{type, nodeId, payload}`;
 * a node never sees its own (it already acted locally). With REDIS_URL the
 * bus is Redis pub/sub; without it a node is alone and publishing is a no-op.
 */
import { Redis } from 'ioredis';
import type { Logger } from '../core/ports';

export interface Envelope<T = unknown> {
  type: string;
  nodeId: string;
  payload: T;
}

export type Handler = (env: Envelope) => void;

export interface Bus {
  readonly nodeId: string;
  /** Sends to every other node subscribed to the channel. */
  publish(channel: string, type: string, payload: unknown): Promise<void>;
  /** Calls handler for other nodes' messages on the channel; returns an unsubscribe function. */
  subscribe(channel: string, handler: Handler): Promise<() => Promise<void>>;
  /** True when messages can currently flow to other nodes. */
  healthy(): boolean;
  /**
   * Calls handler each time the bus is back after losing Redis, once its
   * subscriptions are in place again: what other nodes published meanwhile
   * was lost, so listeners catch up from the database. Returns how to stop.
   */
  onReconnect?(handler: () => void): () => void;
  close(): Promise<void>;
}

/** The bus of a node that runs alone. */
export class LocalBus implements Bus {
  constructor(readonly nodeId: string) {}
  async publish(): Promise<void> {}
  async subscribe(): Promise<() => Promise<void>> {
    return async () => {};
  }
  healthy(): boolean {
    return true;
  }
  async close(): Promise<void> {}
}

/** Redis pub/sub: one connection publishes, one subscribes; handlers per channel. */
export class RedisBus implements Bus {
  readonly pub: Redis;
  readonly sub: Redis;
  /** SUBSCRIBEs sent and not answered yet, per channel. */
  private readonly subscribing = new Map<string, Promise<void>>();
  private readonly handlers = new Map<string, Set<Handler>>();

  constructor(
    readonly nodeId: string,
    url: string,
    private readonly log: Logger,
  ) {
    const opts = { maxRetriesPerRequest: 2, enableOfflineQueue: true, retryStrategy: (n: number) => Math.min(n * 100, 1000) };
    // Not auto-pipelined: ioredis would send a batch's publishes a turn of the event loop later, after the
    // relay has already marked the batch published, and a node killed in between would lose them for live
    // subscribers (test/fault/kill-node.test.ts caught that).
    this.pub = new Redis(url, opts);
    this.sub = new Redis(url, opts);
    for (const c of [this.pub, this.sub]) c.on('error', (err) => this.log.warn({ err: err.message }, 'redis connection error'));
    this.sub.on('message', (channel: string, message: string) => {
      const set = this.handlers.get(channel);
      if (!set) return;
      let env: Envelope;
      try {
        env = JSON.parse(message);
      } catch {
        return;
      }
      if (env.nodeId === this.nodeId) return;
      for (const h of set) {
        try {
          h(env);
        } catch (err) {
          this.log.error({ err, channel }, 'bus handler failed');
        }
      }
    });
  }

  async publish(channel: string, type: string, payload: unknown): Promise<void> {
    await this.pub.publish(channel, JSON.stringify({ type, nodeId: this.nodeId, payload }));
  }

  async subscribe(channel: string, handler: Handler): Promise<() => Promise<void>> {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      const subscribing = this.sub.subscribe(channel).then(() => undefined);
      this.subscribing.set(channel, subscribing);
      try {
        await subscribing;
      } catch (err) {
        // Not subscribed: forget the channel, so that a later call sends SUBSCRIBE again.
        if (this.handlers.get(channel) === set) this.handlers.delete(channel);
        throw err;
      } finally {
        if (this.subscribing.get(channel) === subscribing) this.subscribing.delete(channel);
      }
    } else {
      // Another call's SUBSCRIBE may still be on its way: this one is subscribed when that one is.
      await this.subscribing.get(channel);
    }
    set.add(handler);
    return async () => {
      const s = this.handlers.get(channel);
      if (!s) return;
      s.delete(handler);
      if (s.size === 0) {
        this.handlers.delete(channel);
        await this.sub.unsubscribe(channel).catch(() => {});
      }
    };
  }

  healthy(): boolean {
    return this.pub.status === 'ready' && this.sub.status === 'ready';
  }

  onReconnect(handler: () => void): () => void {
    let connected = this.sub.status === 'ready';
    const onReady = () => {
      if (!connected) {
        connected = true;
        return;
      }
      // 'ready' comes before ioredis re-subscribes; a PING queued after the SUBSCRIBEs answers once they are in place.
      setImmediate(() => {
        this.sub.ping().then(handler, (err: Error) => this.log.warn({ err: err.message }, 'redis: no answer after reconnecting'));
      });
    };
    this.sub.on('ready', onReady);
    return () => void this.sub.off('ready', onReady);
  }

  async close(): Promise<void> {
    this.pub.disconnect();
    this.sub.disconnect();
  }
}

/** Picks the bus for the configuration. */
export function createBus(nodeId: string, redisUrl: string | undefined, log: Logger): Bus {
  return redisUrl ? new RedisBus(nodeId, redisUrl, log) : new LocalBus(nodeId);
}
