/**
 * The live Yjs documents of this node. Each document goes loading → active →
 * unloading: it subscribes to its bus channel before reading Postgres (so
 * nothing published in between is missed), every accepted update is stored
 * before it is published (update-log.ts), and it unloads only once nobody
 * holds it and no save is pending.
 */
import * as Y from 'yjs';
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness';
import { canonicalDocName, docToJson, type GroupDocJson } from '../../../shared/group-doc';
import { capture, hasPending, Judge, type Role, type UpdateVerdict } from './judge';
import type { Bus, Envelope } from '../../bus/bus';
import type { Logger } from '../../core/ports';
import type { DocumentStore } from '../../core/store';
import { kib, yjsLimits, type YjsLimits } from './limits';
import { applyPresence, pickPresence, relayAwareness, type PresenceEntry, type PresencePick } from './presence';
import { UpdateLog } from './update-log';

export { judgeUpdate, type Role, type UpdateVerdict } from './judge';
const CONTROL_CHANNEL = 'yjs:control';
const channelOf = (docName: string) => `yjs:${docName}`;
// Every name the registry is given is keyed by its canonical spelling (shared/doc-names.ts says why).
const keyOf = (docName: string) => canonicalDocName(docName) ?? docName;
// Transaction origins: what came from the bus is neither stored nor published again.
const REDIS = 'redis';
const SERVER = 'server';
const LOAD = 'load';
const REFILL_EVERY_MS = 2_000;
// Near the size cap a document is measured exactly at most this often (a 2 MiB document takes some 40 ms to encode).
const MEASURE_EVERY_MS = 1_000;

export type DocState = 'loading' | 'active' | 'unloading';
/** An accepted update is applied at once; `stored` settles when it is in Postgres (and then published). */
export type ClientUpdateResult = { ok: true; stored: Promise<void> } | Exclude<UpdateVerdict, { ok: true }>;

/** Who sends a client update; `origin` (the connection's handle) keeps it from being echoed back. */
export interface ClientIdentity {
  userId: string;
  role: Role;
  origin?: DocHandle;
}
/** A live connection holding a document, so `revoke` can close it. */
export interface Connection {
  userId: string;
  close(code: number, reason: string): void;
}

/** One holder's grip on a live document. */
export interface DocHandle {
  readonly docName: string;
  readonly doc: Y.Doc;
  readonly awareness: Awareness;
  /** The awareness client id this holder speaks for (see pickPresence); its state is removed (everywhere) on release. */
  readonly awarenessId: number | null;
}

interface Entry {
  readonly name: string;
  state: DocState;
  readonly doc: Y.Doc;
  readonly awareness: Awareness;
  readonly holders: Set<Handle>;
  readonly saves: Set<Promise<unknown>>;
  loaded: Promise<void>;
  unloaded: Promise<void> | null;
  unsubscribe: (() => Promise<void>) | null;
  timer: NodeJS.Timeout | null;
  /** Its rows in Postgres, as this node writes them. */
  readonly updates: UpdateLog;
  /** The encoded size of the live doc, give or take: every update adds its size, an exact measure replaces it (see applyClientUpdate). */
  size: number;
  /** When the size was last measured exactly (see sizeWait). */
  measuredAt: number;
  /** When Postgres was last read to fill a dependency the bus never delivered. */
  refilledAt: number;
  destroyed: boolean;
  judge: Judge;
  /** Which holder speaks for each awareness client id claimed on this node. */
  readonly owners: Map<number, Handle>;
  /** Stops publishing this node's awareness changes. */
  stopRelay: () => void;
}

class Handle implements DocHandle {
  awarenessId: number | null = null;
  released = false;
  constructor(readonly entry: Entry, readonly conn: Connection | null) {}
  get docName() { return this.entry.name; }
  get doc() { return this.entry.doc; }
  get awareness() { return this.entry.awareness; }
}

const toB64 = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

export interface DocRegistryOptions {
  store: DocumentStore;
  bus: Bus;
  log: Logger;
  /** How long a document with no holders stays loaded. */
  unloadAfterMs?: number;
  /** Compact a document's stored updates after this many appends on this node. */
  compactAfter?: number;
  /** Overrides of the defaults in limits.ts. */
  limits?: Partial<YjsLimits>;
}

/** Loads, serves, persists, relays and unloads the live Yjs documents of one node. */
export class DocRegistry {
  private readonly store: DocumentStore;
  private readonly bus: Bus;
  private readonly log: Logger;
  private readonly unloadAfterMs: number;
  private readonly compactAfter: number;
  /** The limits in force (the defaults with the options' overrides). */
  readonly limits: YjsLimits;
  private readonly docs = new Map<string, Entry>();
  private readonly controlReady: Promise<void>;
  private unsubscribeControl: (() => Promise<void>) | null = null;
  private offReconnect: (() => void) | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(opts: DocRegistryOptions) {
    this.store = opts.store;
    this.bus = opts.bus;
    this.log = opts.log;
    this.unloadAfterMs = opts.unloadAfterMs ?? 30_000;
    this.compactAfter = opts.compactAfter ?? 200;
    this.limits = yjsLimits(opts.limits);
    this.controlReady = this.bus.subscribe(CONTROL_CHANNEL, (env) => this.onControl(env)).then(
      (unsub) => void (this.unsubscribeControl = unsub),
      (err) => this.log.error({ err }, 'yjs: cannot subscribe to the control channel'),
    );
    this.offReconnect = this.bus.onReconnect?.(() => this.catchUp()) ?? null;
  }

  /** Holds a document (loading it once, however many ask at the same time) until `release`. */
  async acquire(docName: string, conn?: Connection): Promise<DocHandle> {
    return this.hold(keyOf(docName), conn ?? null);
  }

  /** Lets go of a handle; the document unloads once idle for `unloadAfterMs`. */
  release(handle: DocHandle): void {
    const h = handle as Handle;
    if (h.released) return;
    h.released = true;
    const e = h.entry;
    e.holders.delete(h);
    // The holder's presence leaves with it, here and (via the relay) on every other node.
    const id = h.awarenessId;
    if (id !== null && e.owners.get(id) === h) {
      e.owners.delete(id);
      if (!e.destroyed) removeAwarenessStates(e.awareness, [id], h);
    }
    this.scheduleUnload(e);
  }

  /**
   * The entry of a holder's awareness update that speaks for its own client
   * id (claiming one on its first non-null state for an id nobody here owns
   * and no node shows), or null; entries for other ids are dropped.
   */
  pickPresence(handle: DocHandle, update: Uint8Array): PresencePick {
    const h = handle as Handle;
    const e = h.entry;
    // The server's own awareness id is no client's: a state under it would count as the server's local state.
    const mayClaim = (id: number) => id !== e.awareness.clientID && !e.owners.has(id) && !e.awareness.states.has(id);
    const pick = pickPresence(update, h.awarenessId, mayClaim, this.limits.maxPresenceBytes);
    if ('entry' in pick && pick.claimed !== null) {
      h.awarenessId = pick.claimed;
      e.owners.set(pick.claimed, h);
    }
    return pick;
  }

  /** Applies a holder's own presence entry (from pickPresence): relayed to local connections and other nodes. */
  applyPresence(handle: DocHandle, entry: PresenceEntry): void {
    const h = handle as Handle;
    if (h.released || h.entry.destroyed || entry.clientId !== h.awarenessId) return;
    applyPresence(h.entry.awareness, entry, h);
  }

  /**
   * How long a holder's update of `bytes` should wait before it is judged (0:
   * not at all). Only an update the size estimate says may not fit needs an
   * exact measure, and a document is measured at most once every
   * MEASURE_EVERY_MS: updates to a document that is (nearly) full are slowed
   * down, so they cannot keep the node encoding it.
   */
  sizeWait(handle: DocHandle, bytes: number): number {
    const e = (handle as Handle).entry;
    if (e.size + bytes <= this.limits.maxDocBytes) return 0;
    return Math.max(0, e.measuredAt + MEASURE_EVERY_MS - Date.now());
  }

  /** Where a document is in its lifecycle on this node (null when not loaded). */
  state(docName: string): DocState | null {
    return this.docs.get(keyOf(docName))?.state ?? null;
  }

  /**
   * Validates a client update and, if accepted, applies it (local clients get
   * it at once) and queues it to be stored and then published; the caller
   * need not wait for that before handling the connection's next message.
   */
  async applyClientUpdate(docName: string, update: Uint8Array, who: ClientIdentity): Promise<ClientUpdateResult> {
    if (update.byteLength > this.limits.maxUpdateBytes) return { ok: false, code: 4413, reason: `the update is larger than ${kib(this.limits.maxUpdateBytes)}` };
    return this.using(keyOf(docName), async (e) => {
      let effective: Uint8Array | null = null;
      let measured: number | null = null;
      // Judge and apply with no await in between, so the verdict holds for the state it is applied to.
      const verdict = e.judge.accept(
        update,
        who,
        () => (effective = capture(e.doc, () => Y.applyUpdate(e.doc, update, who.origin ?? 'client'))),
        (after) => {
          // Every update adds its size to the estimate, though one that deletes what another inserted leaves the
          // document small: only when the estimate says the cap is near is the real size measured.
          if (e.size + update.byteLength <= this.limits.maxDocBytes) return null;
          e.measuredAt = Date.now();
          measured = Y.encodeStateAsUpdate(after).byteLength;
          return measured > this.limits.maxDocBytes ? `the document would be larger than ${kib(this.limits.maxDocBytes)}` : null;
        },
      );
      if (!verdict.ok) return verdict;
      if (measured !== null) e.size = measured;
      // While the live doc waits for a dependency (see refill), part of this update may wait with it: store all of it.
      const stored = hasPending(e.doc) ? update : effective;
      return { ok: true, stored: stored ? e.updates.append(stored) : Promise.resolve() };
    });
  }

  /** A server-origin change (may write the `server` map): applied, stored, broadcast and published. */
  async change(docName: string, fn: (doc: Y.Doc) => void): Promise<void> {
    await this.using(keyOf(docName), async (e) => {
      const effective = capture(e.doc, () => e.doc.transact(() => fn(e.doc), SERVER));
      if (effective) await e.updates.append(effective);
    });
  }

  /** Writes the initial state of a new document (on an existing one, `init` applies on top). */
  async create(docName: string, init: (doc: Y.Doc) => void): Promise<void> {
    await this.change(docName, init);
  }

  /** The converged JSON of a document: the live one when loaded here, else rebuilt from Postgres. */
  async snapshot(name: string): Promise<GroupDocJson> {
    const docName = keyOf(name);
    const e = this.docs.get(docName);
    if (e?.state === 'unloading') await e.unloaded;
    else if (e) {
      const ok = await e.loaded.then(() => true, () => false);
      if (ok && !e.destroyed) return docToJson(e.doc);
    }
    const { updates } = await this.store.load(docName);
    const doc = new Y.Doc();
    try {
      doc.transact(() => updates.forEach((u) => Y.applyUpdate(doc, u)));
      return docToJson(doc);
    } finally {
      doc.destroy();
    }
  }

  /** Closes a user's connections to a document with `code`, on this node and every other. */
  async revoke(name: string, userId: string, code = 4403): Promise<void> {
    const docName = keyOf(name);
    this.revokeLocal(docName, userId, code);
    await this.controlReady;
    await this.bus.publish(CONTROL_CHANNEL, 'revoke', { docName, userId, code });
  }

  /** Closes every connection's hold, waits for pending saves, compacts and unloads every document. */
  close(): Promise<void> {
    this.closed = true;
    this.offReconnect?.();
    this.closing ??= (async () => {
      await this.controlReady;
      await this.unsubscribeControl?.().catch(() => {});
      await Promise.all(
        [...this.docs.values()].map(async (e) => {
          for (const h of [...e.holders]) h.conn?.close(1012, 'server restarting');
          if (await e.loaded.then(() => true, () => false)) await this.unload(e);
        }),
      );
    })();
    return this.closing;
  }

  private async hold(name: string, conn: Connection | null): Promise<Handle> {
    for (;;) {
      if (this.closed) throw new Error('the document registry is closed');
      const existing = this.docs.get(name);
      // A document on its way out finishes unloading (and saving) before it is loaded afresh.
      if (existing?.state === 'unloading') {
        await existing.unloaded;
        continue;
      }
      const e = existing ?? this.open(name);
      const h = new Handle(e, conn);
      e.holders.add(h);
      this.cancelUnload(e);
      try {
        await e.loaded;
      } catch (err) {
        e.holders.delete(h);
        throw err;
      }
      if (!e.destroyed) return h;
      e.holders.delete(h);
    }
  }

  private async using<T>(name: string, fn: (e: Entry) => Promise<T>): Promise<T> {
    const h = await this.hold(name, null);
    try {
      return await fn(h.entry);
    } finally {
      this.release(h);
    }
  }

  private open(name: string): Entry {
    const doc = new Y.Doc();
    const awareness = new Awareness(doc);
    // The server is no participant: it has no awareness state of its own.
    awareness.setLocalState(null);
    const updates = new UpdateLog(name, {
      store: this.store,
      log: this.log,
      compactAfter: this.compactAfter,
      compactAfterBytes: this.limits.compactAfterBytes,
      publish: (update) => this.bus.publish(channelOf(name), 'update', toB64(update)).catch((err) => this.log.warn({ err, docName: name }, 'yjs: update publish failed')),
      track: (work) => this.track(e, work),
      live: () => (e.destroyed ? null : doc),
      measured: (bytes) => void (e.size = bytes),
    });
    const e: Entry = {
      name, state: 'loading', doc, awareness, holders: new Set(), saves: new Set(), loaded: Promise.resolve(), unloaded: null,
      unsubscribe: null, timer: null, updates, size: 0, measuredAt: 0, refilledAt: 0, destroyed: false,
      judge: new Judge(doc), owners: new Map(), stopRelay: () => {},
    };
    doc.on('update', (update: Uint8Array) => void (e.size += update.byteLength));
    // Only changes made here travel: remote states are their node's to propagate, and timeouts happen on every node.
    e.stopRelay = relayAwareness(awareness, (ids) => this.publishAwareness(e, ids), (origin) => !e.destroyed && origin !== REDIS && origin !== 'timeout');
    e.loaded = this.load(e).catch(async (err) => {
      // A failed load leaves nothing behind, so the next acquire starts over.
      this.log.error({ err, docName: name }, 'yjs: document failed to load');
      await this.destroy(e);
      throw err;
    });
    e.loaded.catch(() => {});
    this.docs.set(name, e);
    return e;
  }

  private async load(e: Entry): Promise<void> {
    // Subscribe first: an update published while Postgres is read is applied anyway (updates are idempotent).
    e.unsubscribe = await this.bus.subscribe(channelOf(e.name), (env) => this.onBus(e, env));
    const { updates } = await this.store.load(e.name);
    e.doc.transact(() => updates.forEach((u) => Y.applyUpdate(e.doc, u, LOAD)), LOAD);
    e.updates.loaded(updates);
    e.state = 'active';
    if (hasPending(e.doc)) this.refill(e);
    // Other nodes' clients renew their awareness only every 15 s; ask for it now.
    this.bus.publish(channelOf(e.name), 'awareness-query', null).catch((err) => this.log.warn({ err }, 'yjs: awareness query failed'));
  }

  private onBus(e: Entry, env: Envelope): void {
    if (e.destroyed) return;
    if (env.type === 'awareness-query') return this.publishAwareness(e, [...e.owners.keys()]);
    if (typeof env.payload !== 'string') return;
    try {
      if (env.type === 'update') {
        const update = fromB64(env.payload);
        e.updates.storedElsewhere(update.byteLength);
        Y.applyUpdate(e.doc, update, REDIS);
        if (hasPending(e.doc)) this.refill(e);
      } else if (env.type === 'awareness') applyAwarenessUpdate(e.awareness, fromB64(env.payload), REDIS);
    } catch (err) {
      this.log.warn({ err, docName: e.name, from: env.nodeId }, 'yjs: bad message on the bus');
    }
  }

  private publishAwareness(e: Entry, ids: number[]): void {
    const known = ids.filter((id) => e.awareness.meta.has(id));
    if (!known.length) return;
    const payload = toB64(encodeAwarenessUpdate(e.awareness, known));
    this.bus.publish(channelOf(e.name), 'awareness', payload).catch((err) => this.log.warn({ err }, 'yjs: awareness publish failed'));
  }

  private onControl(env: Envelope): void {
    const p = env.payload as { docName?: unknown; userId?: unknown; code?: unknown } | null;
    if (env.type !== 'revoke' || typeof p?.docName !== 'string' || typeof p.userId !== 'string') return;
    this.revokeLocal(keyOf(p.docName), p.userId, typeof p.code === 'number' ? p.code : 4403);
  }

  private revokeLocal(docName: string, userId: string, code: number): void {
    for (const h of [...(this.docs.get(docName)?.holders ?? [])]) if (h.conn?.userId === userId) h.conn.close(code, 'access revoked');
  }

  /**
   * After the bus lost Redis: every update another node stored meanwhile is in
   * Postgres but its publish was lost, so each loaded document reads Postgres
   * again, and asks for the awareness states it missed.
   */
  private catchUp(): void {
    for (const e of this.docs.values()) {
      if (e.state !== 'active' || e.destroyed) continue;
      e.refilledAt = 0;
      this.refill(e);
      this.bus.publish(channelOf(e.name), 'awareness-query', null).catch((err) => this.log.warn({ err }, 'yjs: awareness query failed'));
    }
  }

  /**
   * Reads Postgres again when the doc waits for a dependency the bus never
   * delivered (a lost publish): everything published was stored first, so
   * Postgres has it. At most once every few seconds per document.
   */
  private refill(e: Entry): void {
    if (e.state !== 'active' || Date.now() - e.refilledAt < REFILL_EVERY_MS) return;
    e.refilledAt = Date.now();
    const fill = this.store.load(e.name, { fresh: true }).then(({ updates }) => {
      if (!e.destroyed) e.doc.transact(() => updates.forEach((u) => Y.applyUpdate(e.doc, u, REDIS)), REDIS);
    });
    this.track(e, fill.catch((err) => this.log.warn({ err, docName: e.name }, 'yjs: refill from Postgres failed')));
  }

  private track<T>(e: Entry, p: Promise<T>): Promise<T> {
    e.saves.add(p);
    const done = () => {
      e.saves.delete(p);
      this.scheduleUnload(e);
    };
    p.then(done, done);
    return p;
  }

  private scheduleUnload(e: Entry): void {
    if (this.closed || e.state !== 'active' || e.holders.size || e.saves.size || e.timer) return;
    e.timer = setTimeout(() => {
      e.timer = null;
      if (e.state === 'active' && !e.holders.size && !e.saves.size) void this.unload(e);
    }, this.unloadAfterMs);
    e.timer.unref();
  }

  private cancelUnload(e: Entry): void {
    if (e.timer) clearTimeout(e.timer);
    e.timer = null;
  }

  private unload(e: Entry): Promise<void> {
    if (e.unloaded) return e.unloaded;
    e.state = 'unloading';
    this.cancelUnload(e);
    e.unloaded = (async () => {
      while (e.saves.size) await Promise.allSettled([...e.saves]);
      if (e.updates.needsCompaction) await e.updates.compact().catch((err) => this.log.warn({ err, docName: e.name }, 'yjs: compaction on unload failed'));
      await this.destroy(e);
    })();
    return e.unloaded;
  }

  private async destroy(e: Entry): Promise<void> {
    e.destroyed = true;
    e.judge.destroy();
    e.stopRelay();
    this.cancelUnload(e);
    if (this.docs.get(e.name) === e) this.docs.delete(e.name);
    await e.unsubscribe?.().catch(() => {});
    e.awareness.destroy();
    e.doc.destroy();
  }
}
