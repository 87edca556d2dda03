/**
 * Live availability, holds and bookings over Socket.IO, with typed commands
 * and acks, and the client side of docs/realtime.md "Keeping a client exact":
 * per-resource positions, gap detection from `prevSeqs`, `resync` after a gap
 * or a reconnect, and a fresh snapshot whenever the events cannot be trusted.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type { Problem } from '../errors';
import type { AvailabilityChanged, ClientToServerEvents, LiveEvent, ServerToClientEvents } from '../live';
import type { ServerClock } from './clock';
import type { Schemas } from './rest';

export type Hold = Schemas['Hold'];
export type Booking = Schemas['Booking'];
export type Slot = AvailabilityChanged['slots'][number];
/** A command's answer: its data, or the same problem REST would answer. */
export type CommandAck<T> = { ok: true; data: T } | { ok: false; error: Problem };

export type LiveStatus = 'connecting' | 'online' | 'reconnecting' | 'offline' | 'unauthorized';
export type DomainEventType = Exclude<keyof ServerToClientEvents, 'availability.changed'>;
/** A domain event with its type, live or replayed by resync. */
export type DomainEvent = LiveEvent & { type: DomainEventType; hold?: Hold; booking?: Booking };

export interface WatchRange {
  resourceIds: string[];
  from: string;
  to: string;
}

/** What a watch knows: per resource, its slots in the range by start (ISO), kept exact by the protocol. */
export interface AvailabilityView {
  range: WatchRange;
  slots: Map<string, Map<string, Slot>>;
}

export interface LiveOptions {
  baseUrl: string;
  /** A user token or a tenant API key; a function is asked again on every (re)connect. */
  token: string | (() => string | null | undefined);
  clock?: ServerClock;
  /** Passed to socket.io-client (transports, reconnection delays, …). */
  socket?: Partial<ManagerOptions & SocketOptions>;
  /** How long a command waits for its ack (default 10 s). */
  ackTimeoutMs?: number;
}

const DOMAIN_EVENTS: DomainEventType[] = [
  'hold.created', 'hold.extended', 'hold.released', 'hold.expired',
  'booking.confirmed', 'booking.cancelled', 'booking.rescheduled', 'booking.updated',
];

type HoldCreateBody = Schemas['HoldCreate'] & { idempotencyKey?: string };
type HoldConfirmBody = Schemas['HoldConfirm'] & { holdId: string; idempotencyKey?: string };

/** One Socket.IO connection: commands, watched ranges, status. */
export class LiveClient {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private statusNow: LiveStatus = 'connecting';
  private readonly statusListeners = new Set<(s: LiveStatus) => void>();
  private readonly eventListeners = new Set<(e: DomainEvent, replayed: boolean) => void>();
  private readonly watches = new Set<Watch>();
  private everConnected = false;
  private closed = false;
  /** Watches catching up, and the live domain events held back meanwhile. */
  private syncs = 0;
  private held: DomainEvent[] = [];
  private readonly ackTimeoutMs: number;

  constructor(private readonly opts: LiveOptions) {
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 10_000;
    const token = () => (typeof opts.token === 'function' ? opts.token() : opts.token) ?? '';
    this.socket = io(opts.baseUrl, {
      // The credential is read on every connection attempt, so a renewed token is used after a reconnect.
      auth: (cb) => cb({ token: token() }),
      reconnectionDelay: 500,
      reconnectionDelayMax: 5_000,
      ...opts.socket,
    });
    this.socket.on('connect', () => {
      const again = this.everConnected;
      this.everConnected = true;
      this.setStatus('online');
      // A new connection has joined no rooms: every watch subscribes again and catches up.
      if (again) for (const w of this.watches) w.catchUp('reconnect');
    });
    this.socket.on('disconnect', (reason) => {
      if (reason === 'io client disconnect') return this.setStatus('offline');
      this.setStatus(this.isOffline() ? 'offline' : 'reconnecting');
      // socket.io-client does not reconnect by itself after the server closed the socket. The server does so when it
      // shuts down (reconnect: another node, or this one once back) and when the credential ended (the next handshake
      // then fails as unauthorized): connect again, and the manager's backoff takes over if that fails.
      if (reason === 'io server disconnect') setTimeout(() => this.closed || this.socket.connect(), 250 + Math.random() * 750);
    });
    this.socket.on('connect_error', (err) => {
      if (err.message === 'unauthorized') this.setStatus('unauthorized');
      else if (this.isOffline()) this.setStatus('offline');
      else this.setStatus(this.everConnected ? 'reconnecting' : 'connecting');
    });
    this.socket.io.on('reconnect_failed', () => this.setStatus('offline'));
    this.socket.on('availability.changed', (e) => {
      for (const w of this.watches) w.onAvailability(e);
    });
    for (const type of DOMAIN_EVENTS) {
      this.socket.on(type, (e: LiveEvent) => this.onDomainEvent({ ...e, type } as DomainEvent, false));
    }
  }

  get status(): LiveStatus {
    return this.statusNow;
  }

  /** Calls `cb` with every status change; returns the unsubscribe. */
  onStatus(cb: (s: LiveStatus) => void): () => void {
    this.statusListeners.add(cb);
    return () => this.statusListeners.delete(cb);
  }

  /** Calls `cb` once per domain event on watched resources (live, or replayed by resync after a gap or reconnect). */
  onEvent(cb: (e: DomainEvent, replayed: boolean) => void): () => void {
    this.eventListeners.add(cb);
    return () => this.eventListeners.delete(cb);
  }

  /** Watches a range of resources; `onChange` runs with the whole view after every change. */
  async watch(range: WatchRange, onChange: (view: AvailabilityView) => void): Promise<Watch> {
    const w = new Watch(this, range, onChange);
    this.watches.add(w);
    try {
      await w.resubscribe('start');
    } catch (err) {
      this.watches.delete(w);
      throw err;
    }
    return w;
  }

  /** Holds seats (the body of POST /v1/holds). */
  async holdCreate(body: HoldCreateBody): Promise<CommandAck<Hold>> {
    const sent = Date.now();
    const ack = await this.command<Hold>('hold.create', body);
    // A new hold's createdAt is the server's clock during the call: an exact reading.
    if (ack.ok) this.opts.clock?.sample({ serverMs: Date.parse(ack.data.createdAt), sentAt: sent, receivedAt: Date.now() });
    return ack;
  }

  /** Extends a hold to `ttlSeconds` from now (a hold lives at most 30 minutes in all). */
  holdExtend(body: { holdId: string; ttlSeconds: number; idempotencyKey?: string }): Promise<CommandAck<Hold>> {
    return this.command<Hold>('hold.extend', body);
  }

  /** Releases a hold. */
  holdRelease(body: { holdId: string; idempotencyKey?: string }): Promise<CommandAck<Hold>> {
    return this.command<Hold>('hold.release', body);
  }

  /** Confirms a hold into a booking. */
  holdConfirm(body: HoldConfirmBody): Promise<CommandAck<Booking>> {
    return this.command<Booking>('hold.confirm', body);
  }

  /** Closes the connection for good. */
  close(): void {
    this.closed = true;
    for (const w of this.watches) w.stop();
    this.socket.disconnect();
  }

  /** @internal An emit with an ack; a timeout or a lost connection is a 503 problem, not an exception. */
  async command<T>(event: keyof ClientToServerEvents, payload: object): Promise<CommandAck<T>> {
    try {
      const ack = (await this.socket.timeout(this.ackTimeoutMs).emitWithAck(event as 'hold.create', payload as Record<string, unknown>)) as
        | { ok: true; data?: T; [k: string]: unknown }
        | { ok: false; error: Problem };
      if (!ack.ok) return ack;
      return { ok: true, data: (ack.data ?? ack) as T };
    } catch {
      return {
        ok: false,
        error: { type: 'about:blank', title: 'No answer', status: 503, code: 'unavailable', detail: `no answer to ${event} within ${this.ackTimeoutMs} ms; the connection may be down` },
      };
    }
  }

  /** @internal */
  forget(w: Watch): void {
    this.watches.delete(w);
  }

  /** @internal A watch starts catching up: live domain events wait, so listeners get the missed ones first. */
  beginSync(): void {
    this.syncs++;
  }

  /** @internal A watch caught up: the live events that waited go out, in seq order. */
  endSync(): void {
    if (--this.syncs > 0) return;
    const waiting = this.held.sort((a, b) => a.seq - b.seq);
    this.held = [];
    for (const e of waiting) this.deliver(e, false);
  }

  /** @internal A domain event, live or replayed by resync. */
  onDomainEvent(e: DomainEvent, replayed: boolean): void {
    if (!replayed && this.syncs > 0) this.held.push(e);
    else this.deliver(e, replayed);
  }

  /** Delivers a domain event to listeners once (a watch may have seen it already). */
  private deliver(e: DomainEvent, replayed: boolean): void {
    let fresh = false;
    for (const w of this.watches) if (w.takeEvent(e)) fresh = true;
    if (!fresh) return;
    for (const cb of this.eventListeners) cb(e, replayed);
  }

  private isOffline(): boolean {
    const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
    return nav?.onLine === false;
  }

  private setStatus(s: LiveStatus): void {
    if (s === this.statusNow) return;
    this.statusNow = s;
    for (const cb of this.statusListeners) cb(s);
  }
}

/** One watched range: the availability view and, per resource, the seq of the last event seen. */
export class Watch {
  readonly view: AvailabilityView;
  private readonly last = new Map<string, number>();
  private readonly seen = new Set<number>();
  private syncing: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(private readonly live: LiveClient, readonly range: WatchRange, private readonly onChange: (view: AvailabilityView) => void) {
    this.view = { range, slots: new Map(range.resourceIds.map((id) => [id, new Map()])) };
  }

  /** The seq of the last event seen of `resourceId` (0 before the first snapshot). */
  positionOf(resourceId: string): number {
    return this.last.get(resourceId) ?? 0;
  }

  /** Stops watching (unsubscribes when connected). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.live.forget(this);
    if (this.live.socket.connected) void this.live.command('unsubscribe', { resourceIds: this.range.resourceIds });
  }

  /**
   * Subscribes (again), takes the fresh snapshot, then replays what was
   * missed since the oldest position through `resync`. Concurrent calls
   * coalesce: one runs, and one more after it if asked meanwhile.
   */
  resubscribe(_why: 'start' | 'reconnect' | 'gap'): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      this.live.beginSync();
      try {
        do {
          this.again = false;
          await this.syncOnce();
        } while (this.again && !this.stopped);
      } finally {
        this.syncing = null;
        this.live.endSync();
      }
    })();
    return this.syncing;
  }

  /**
   * resubscribe in the background: a failure while connected is retried after
   * a pause; one while disconnected waits for the next connect, which
   * catches up again anyway.
   */
  catchUp(why: 'reconnect' | 'gap'): void {
    this.resubscribe(why).catch(() => {
      if (!this.stopped && this.live.socket.connected) setTimeout(() => this.catchUp(why), 2_000);
    });
  }

  private async syncOnce(): Promise<void> {
    const before = this.last.size ? Math.min(...this.last.values()) : null;
    const sub = await this.live.command<never>('subscribe', this.range);
    if (!sub.ok) throw new Error(`subscribe refused: ${sub.error.code}: ${sub.error.detail}`);
    const { seq, availability } = sub.data as unknown as { seq: number; availability: { resources: { resourceId: string; slots: Slot[] }[] } };
    if (this.stopped) return;
    // Events the snapshot does not show yet arrive live after it; any with a seq at or below it is already in it.
    for (const r of availability.resources) {
      this.view.slots.set(r.resourceId, new Map(r.slots.map((s) => [s.start, s])));
      this.last.set(r.resourceId, Math.max(this.last.get(r.resourceId) ?? 0, seq));
    }
    this.onChange(this.view);
    if (before === null) return;
    // What happened while we were away, for the listeners (the snapshot already shows its effect).
    const missed = await this.live.command<never>('resync', { afterSeq: before });
    if (!missed.ok || this.stopped) return;
    const body = missed.data as unknown as { events?: (LiveEvent & { type: DomainEventType })[]; snapshotRequired?: boolean };
    for (const e of body.events ?? []) this.live.onDomainEvent(e as DomainEvent, true);
  }

  /** @internal An availability.changed: applied unless older than what the view shows; a gap resubscribes. */
  onAvailability(e: AvailabilityChanged): void {
    if (this.stopped || !this.view.slots.has(e.resourceId)) return;
    const last = this.last.get(e.resourceId);
    if (last === undefined) return;
    if (e.prevSeq > last) {
      this.catchUp('gap');
      return;
    }
    if (e.seq < last) return;
    const slots = this.view.slots.get(e.resourceId)!;
    const from = Date.parse(this.range.from);
    const to = Date.parse(this.range.to);
    for (const s of e.slots) if (Date.parse(s.end) > from && Date.parse(s.start) < to) slots.set(s.start, s);
    this.last.set(e.resourceId, e.seq);
    this.onChange(this.view);
  }

  /** @internal A domain event: advances positions; true the first time this watch sees its seq. */
  takeEvent(e: DomainEvent): boolean {
    const mine = e.resourceIds.filter((id) => this.last.has(id));
    if (this.stopped || mine.length === 0) return false;
    if (this.seen.has(e.seq)) return false;
    this.seen.add(e.seq);
    if (this.seen.size > 5_000) for (const s of [...this.seen].slice(0, 1_000)) this.seen.delete(s);
    // A previous position newer than the one we saw: an event was missed. Positions stay where they were, so
    // the resync after the fresh snapshot replays from the oldest of them.
    if (mine.some((id) => (e.prevSeqs?.[id] ?? 0) > this.last.get(id)!)) {
      this.catchUp('gap');
      return true;
    }
    for (const id of mine) if (e.seq > this.last.get(id)!) this.last.set(id, e.seq);
    return true;
  }
}
