/**
 * The feed decoder: turns committed transactions' logical messages into the
 * numbered event feed, and hands each numbered batch to the fan-out.
 *
 * Every node runs one; the one that holds the database's replication slot
 * (Postgres lets one connection stream a slot at a time) is the decoder, the
 * others try again every `retryMs` and take over when it dies. Per group of
 * commits received, the decoder:
 *   1. numbers the events with contiguous seqs, in commit order, after what it
 *      numbered before (each resource's previous seq from memory, or read from
 *      `feed_resource_heads` the first time the resource appears);
 *   2. hands them to the publisher at once, which emits them in seq order once
 *      the bus is up and records how far it got (`emitted_seq`). Numbering
 *      waits neither for this batch's store nor for the one before it;
 *   3. stores the numbered batches in order, those waiting together in one
 *      transaction under the row lock of `feed_cursor`, checked first: a
 *      decoder that lost the slot (another has stored since) stores nothing,
 *      and restarts. Numbering is a function of the WAL and the stored cursor
 *      alone, so if a store fails (or the node dies first), whoever decodes
 *      next numbers the same transactions the same way: what was emitted is
 *      emitted again at most (at least once; clients dedupe by seq), never
 *      with another seq;
 *   4. acknowledges the WAL up to what it stored (Postgres may then recycle
 *      it), and, when nothing received waits to be stored, up to what the
 *      server sent. A new decoder re-emits what the old one stored but may not
 *      have emitted.
 * Nothing is acknowledged before it is stored, so a decoder killed at any
 * point loses nothing: its successor streams again from the last
 * acknowledged position.
 */
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import type pg from 'pg';
import type { FeedEvent, SlotState } from '../core/events';
import type { Logger } from '../core/ports';
import { eventRepository, MARK_PREFIX, MESSAGE_PREFIX } from './repositories/events';

/** The publication the feed streams (migration 005). */
export const FEED_PUBLICATION = 'slotwise_feed';

/** Stored events the publisher keeps in memory while it cannot emit them; past this it drops them and reads them back from the table. */
export const DEFAULT_FEED_MAX_UNSENT = 20_000;

/** A decoded message before it has a seq. */
interface Decoded {
  tenantId: string;
  type: string;
  resourceIds: string[];
  data: Record<string, unknown>;
  slots: SlotState[];
}

interface CommittedTx {
  endLsn: string;
  at: number;
  messages: Decoded[];
}

/** An LSN as a number that orders (X/Y: 32 + 32 bits). */
export const lsnValue = (lsn: string): bigint => {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
};

/** X/Y for an LSN value. */
const lsnText = (v: bigint): string => `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;

/**
 * Tells Postgres the slot may resume at exactly `lsn`. pg-logical-replication's
 * `acknowledge(x)` reports x + 1 (as if x were the last byte received), but a
 * commit's end LSN is where the next WAL record starts, and Postgres resumes a
 * slot by skipping every transaction whose commit record starts before the
 * reported position: one past a commit's end would skip a transaction whose
 * commit record comes right after it, losing its events. So it is given lsn - 1.
 */
const acknowledgeAt = (service: LogicalReplicationService, lsn: string): Promise<unknown> => {
  const v = lsnValue(lsn);
  return v > 0n ? service.acknowledge(lsnText(v - 1n)) : Promise.resolve();
};

// pg-logical-replication gives commit times as microseconds since 1970 (it converts pgoutput's 2000-based ones).
const timeOf = (us: bigint | BigInt) => Number((us as bigint) / 1000n);

export interface FeedOptions {
  /** The connection string of the database (the decoder opens a replication connection). */
  url: string;
  /** The replication slot (one per database; server/db/migrate.ts creates it). */
  slot: string;
  /** The pool the decoder stores and reads on (its own connections, not the requests'). */
  pool: pg.Pool;
  log: Logger;
  /** Emits a stored batch to every subscriber; throws when it cannot (then it is retried). */
  publish: (events: FeedEvent[]) => Promise<void>;
  /** False while the batch could not reach the other nodes (the bus is down): the publisher waits. */
  canPublish: () => boolean;
  /** How often a standby node tries to take the slot, and a failed decoder restarts (ms). */
  retryMs?: number;
  /** Stored events held in memory for the publisher (default DEFAULT_FEED_MAX_UNSENT); past it they are read back from the table. */
  maxUnsent?: number;
  /** Resource heads kept in memory (default DEFAULT_FEED_MAX_HEADS); past it those already stored are read again when needed. */
  maxHeads?: number;
  /** Transactions numbered ahead of their store (default DEFAULT_FEED_MAX_AHEAD); past it numbering waits for the store. */
  maxAhead?: number;
  /**
   * Called once per event: how long after its transaction's commit timestamp (Postgres's clock, taken before the
   * commit's WAL flush, which counts too; a Postgres clock ahead of the node's shortens it) it reached a stage: `decoded` (the commit record arrived on the
   * replication stream), `stored` (numbered and stored), `emitted` (handed to every node through the bus; events
   * go out as soon as they are numbered, often before they are stored). Events read back from the table after a
   * takeover count from their commit too.
   */
  observe?: (stage: FeedStage, seconds: number) => void;
}

export type FeedStage = 'decoded' | 'stored' | 'emitted';

class Fenced extends Error {}

/** A batch numbered in memory, to be stored in its turn. */
interface Numbered {
  txs: CommittedTx[];
  events: FeedEvent[];
  /** The resources the batch's events name, at their new heads. */
  touched: Map<string, number>;
  /** The cursor it was numbered after: a store fences on it (the table must show exactly this). */
  after: { lsn: string; lastSeq: number };
  /** The cursor once it is stored. */
  lsn: string;
  lastSeq: number;
}

/** Transactions of the WAL numbered, and stored, in one batch at most. */
const BATCH_TXS = 500;
/** Resource heads kept in memory before those the table already has are let go. */
export const DEFAULT_FEED_MAX_HEADS = 100_000;
/** Transactions numbered and waiting for their store before numbering waits for the store to catch up. */
export const DEFAULT_FEED_MAX_AHEAD = 10 * BATCH_TXS;

export class FeedDecoder {
  private service: LogicalReplicationService | null = null;
  private stopped = true;
  private timer: NodeJS.Timeout | null = null;
  private leading = false;
  /** The transaction being received (between its begin and commit). */
  private current: CommittedTx | null = null;
  /** Committed transactions received but not numbered yet. */
  private pending: CommittedTx[] = [];
  /** The numbering loop (one batch at a time, in commit order); null while nothing waits. */
  private numbering: Promise<void> | null = null;
  /** Numbered batches waiting to be stored, oldest first. */
  private toStore: Numbered[] = [];
  /** The storing loop (one transaction at a time, in order); null while nothing waits. */
  private storing: Promise<void> | null = null;
  /** The cursor as this decoder last stored it (null until it leads). */
  private cursor: { lsn: string; lastSeq: number } | null = null;
  /**
   * Which leadership the loops work for: bumped each time this node takes the slot and each time it lets it go, so
   * a loop (or a store) left over from an earlier stream stops, and its failure does not end the current one.
   */
  private epoch = 0;
  /** How far this decoder has numbered: the cursor, plus the batches numbered but not stored yet. */
  private numberedAt: { lsn: string; lastSeq: number } | null = null;
  /**
   * Each resource's last numbered seq, for the next event's prevSeqs: read from `feed_resource_heads` the first
   * time a resource appears after taking the slot, then kept here (ahead of the table while batches wait to be
   * stored). Past `maxHeads` entries, those the table also has are let go.
   */
  private heads = new Map<string, number>();
  /** The WAL position last acknowledged on this stream (the slot resumes there). */
  private acknowledged = 0n;
  /** Numbered events not emitted yet, oldest first (dropped if they pile up; then read back once stored). */
  private unsent: FeedEvent[] = [];
  /** The last seq numbered: stored, or being stored (ahead of `cursor` while its transaction runs). */
  private numbered = 0;
  private emitted = 0;
  private publishing: Promise<void> | null = null;
  private emittedSaved = 0;
  private readonly retryMs: number;
  private readonly maxUnsent: number;
  private readonly maxHeads: number;
  private readonly maxAhead: number;

  constructor(private readonly opts: FeedOptions) {
    this.retryMs = opts.retryMs ?? 500;
    this.maxUnsent = opts.maxUnsent ?? DEFAULT_FEED_MAX_UNSENT;
    this.maxHeads = opts.maxHeads ?? DEFAULT_FEED_MAX_HEADS;
    this.maxAhead = opts.maxAhead ?? DEFAULT_FEED_MAX_AHEAD;
  }

  /** Whether this node is the cluster's decoder, the last seq it stored and the last it emitted (which may be ahead: events go out as they are numbered). */
  state(): { leading: boolean; lastSeq: number; emitted: number } {
    return { leading: this.leading, lastSeq: this.cursor?.lastSeq ?? 0, emitted: this.emitted };
  }

  /** Starts trying to lead (and keeps trying). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.attempt();
    this.timer = setInterval(() => {
      if (!this.service) void this.attempt();
      else void this.publish();
    }, this.retryMs);
    this.timer.unref();
  }

  /** Stops decoding: stores and emits what was received, then releases the slot. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.numbering?.catch(() => {});
    await this.storing?.catch(() => {});
    await this.publishing?.catch(() => {});
    await this.saveEmitted().catch(() => {});
    await this.release();
  }

  private async release(): Promise<void> {
    const s = this.service;
    this.service = null;
    this.leading = false;
    this.epoch++;
    this.current = null;
    this.pending = [];
    this.toStore = [];
    this.cursor = null;
    this.numberedAt = null;
    this.heads.clear();
    this.unsent = [];
    if (s) await s.destroy().catch(() => {});
  }

  /** One try at taking the slot and streaming it until the connection ends. */
  private async attempt(): Promise<void> {
    if (this.stopped || this.service) return;
    const service = new LogicalReplicationService(
      { connectionString: this.opts.url },
      // Nothing is acknowledged automatically (nor on the library's timer): only what is stored.
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
    this.service = service;
    service.on('error', () => {});
    service.on('start', () => void this.took().catch((err) => {
      this.opts.log.warn({ err: (err as Error).message }, 'feed decoder could not read its cursor; retrying');
      void service.stop().catch(() => {});
    }));
    service.on('data', (lsn: string, msg: any) => this.receive(msg));
    service.on('heartbeat', (lsn: string, _ts: number, respond: boolean) => {
      if (!this.cursor) return;
      // Everything the server sent before this keepalive (up to `lsn`) has been received. With nothing of it waiting to
      // be stored, the rest was WAL without events (the decoder's own cursor updates, other tables, other databases):
      // acknowledge all of it, so the slot holds no WAL back, and a fast shutdown of Postgres, whose WAL sender waits
      // for the client to confirm everything sent, does not wait for its timeout.
      const idle = !this.current && this.pending.length === 0 && this.toStore.length === 0 && !this.numbering && !this.storing;
      const upTo = idle && lsnValue(lsn) > lsnValue(this.cursor.lsn) ? lsn : this.cursor.lsn;
      if (!respond && lsnValue(upTo) <= this.acknowledged) return;
      this.acknowledged = lsnValue(upTo);
      void acknowledgeAt(service, upTo).catch(() => {});
    });
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [FEED_PUBLICATION], messages: true });
    try {
      await service.subscribe(plugin, this.opts.slot);
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      // Another node streams the slot: this one stands by.
      if (!/is active for PID/.test(message) && !this.stopped) this.opts.log.warn({ err: message }, 'feed decoder stopped; retrying');
    }
    if (this.service === service) {
      if (this.leading) this.opts.log.info({ slot: this.opts.slot }, 'feed decoder released the slot');
      await this.release();
    }
  }

  /** The slot is ours: read where the feed stands and re-emit what may not have gone out. */
  private async took(): Promise<void> {
    const { rows } = await this.opts.pool.query('SELECT lsn::text AS lsn, last_seq, emitted_seq FROM feed_cursor WHERE id');
    this.cursor = { lsn: rows[0].lsn, lastSeq: Number(rows[0].last_seq) };
    this.numberedAt = { ...this.cursor };
    this.epoch++;
    this.toStore = [];
    this.heads.clear();
    this.acknowledged = 0n;
    this.numbered = this.cursor.lastSeq;
    this.unsent = [];
    this.emitted = this.emittedSaved = Number(rows[0].emitted_seq);
    this.leading = true;
    this.opts.log.info({ slot: this.opts.slot, lastSeq: this.cursor.lastSeq, emitted: this.emitted }, 'feed decoder took the slot');
    this.schedule();
    void this.publish();
  }

  private receive(msg: any): void {
    switch (msg.tag) {
      case 'begin':
        this.current = { endLsn: '', at: timeOf(msg.commitTime), messages: [] };
        return;
      case 'message': {
        // A reader's mark: once what came before it is stored, the cursor moves to it (see eventRepository.mark).
        if (msg.prefix === MARK_PREFIX && !msg.transactional) {
          this.pending.push({ endLsn: msg.messageLsn, at: Date.now(), messages: [] });
          this.schedule();
          return;
        }
        if (msg.prefix !== MESSAGE_PREFIX || !this.current) return;
        try {
          const m = JSON.parse(Buffer.from(msg.content).toString('utf8')) as Decoded;
          this.current.messages.push(m);
        } catch (err) {
          this.opts.log.error({ err: (err as Error).message }, 'an event message could not be read; it is skipped');
        }
        return;
      }
      case 'commit': {
        const tx = this.current;
        this.current = null;
        if (!tx) return;
        tx.endLsn = msg.commitEndLsn;
        if (this.opts.observe) for (let i = 0; i < tx.messages.length; i++) this.opts.observe('decoded', (Date.now() - tx.at) / 1000);
        this.pending.push(tx);
        this.schedule();
        return;
      }
      default:
    }
  }

  /**
   * Numbers what is pending, one batch at a time (commits arriving meanwhile form the next batch), hands each
   * batch to the publisher at once and queues it to be stored. Numbering does not wait for the store of the
   * batch before it: live delivery waits for no database round trip but the first read of a resource's head.
   */
  private schedule(): void {
    if (this.numbering || !this.leading || this.pending.length === 0) return;
    const epoch = this.epoch;
    const current = () => this.leading && this.epoch === epoch;
    this.numbering = (async () => {
      await Promise.resolve();
      try {
        while (this.pending.length && current()) {
          // Bounded memory: while the store is far behind, numbering waits for it.
          while (this.toStore.reduce((n, b) => n + b.txs.length, 0) >= this.maxAhead && this.storing && current()) await this.storing;
          if (!current()) return;
          const batch = this.pending.splice(0, BATCH_TXS);
          const numbered = await this.number(batch, epoch);
          this.toStore.push(numbered);
          this.storeQueued();
        }
      } catch (err) {
        await this.fail(err, epoch);
      } finally {
        this.numbering = null;
        // A loop of an earlier stream ended: the current one may have commits waiting.
        if (this.epoch !== epoch) this.schedule();
      }
    })();
  }

  /** Stores the numbered batches in order, those waiting together in one transaction. */
  private storeQueued(): void {
    if (this.storing || !this.leading || this.toStore.length === 0) return;
    const epoch = this.epoch;
    this.storing = (async () => {
      await Promise.resolve();
      try {
        while (this.toStore.length && this.leading && this.epoch === epoch) {
          // Batches waiting together share a transaction, up to BATCH_TXS transactions of the WAL in it.
          let n = 1;
          let txs = this.toStore[0]!.txs.length;
          while (n < this.toStore.length && txs + this.toStore[n]!.txs.length <= BATCH_TXS) txs += this.toStore[n++]!.txs.length;
          await this.store(this.toStore.splice(0, n), epoch);
        }
      } catch (err) {
        await this.fail(err, epoch);
      } finally {
        this.storing = null;
        if (this.epoch !== epoch) this.storeQueued();
      }
    })();
  }

  /**
   * Stops leading after a failed read or store: what was numbered but not stored is forgotten (numbered again, the
   * same way, by whoever decodes next), and the stream restarts from the last acknowledged position.
   */
  private async fail(err: unknown, epoch: number): Promise<void> {
    // A loop of an earlier stream failing says nothing about the current one.
    if (!this.leading || this.epoch !== epoch) return;
    this.opts.log.warn({ err: (err as Error).message, fenced: err instanceof Fenced }, 'feed batch not stored; restarting the decoder');
    this.leading = false;
    const stored = this.cursor?.lastSeq ?? 0;
    this.numbered = stored;
    this.unsent = this.unsent.filter((e) => e.seq <= stored);
    this.toStore = [];
    this.heads.clear();
    await this.service?.stop().catch(() => {});
  }

  /** Numbers a batch of committed transactions after what is numbered so far, and hands its events to the publisher. */
  private async number(batch: CommittedTx[], epoch: number): Promise<Numbered> {
    // Heads the table also has can be read again when needed: past the bound, only those are let go (here, so that
    // none goes while this batch waits for a read).
    if (this.heads.size > this.maxHeads) for (const [id, s] of this.heads) if (s <= this.cursor!.lastSeq) this.heads.delete(id);
    const at = this.numberedAt!;
    const numberedLsn = lsnValue(at.lsn);
    // After a restart the stream may repeat transactions numbered (and stored) already: skipped by their position.
    const fresh = batch.filter((tx) => lsnValue(tx.endLsn) > numberedLsn);
    const unknown = [...new Set(fresh.flatMap((tx) => tx.messages.flatMap((m) => m.resourceIds)))].filter((id) => !this.heads.has(id));
    if (unknown.length) {
      // Not in memory: no batch since the slot was taken named them, so the table's heads are final for them.
      // With the cursor, in one snapshot: the table must hold nothing this decoder has not numbered before this batch.
      // Then whatever it holds was numbered as this decoder numbered it (numbering is a function of the WAL and the
      // cursor), and its heads are those before this batch. More (a decoder that lost the slot, storing late what
      // this one is about to number) would give this batch previous events from after it.
      const h = await this.opts.pool.query(
        `SELECT h.resource_id, h.seq, c.last_seq FROM feed_cursor c LEFT JOIN feed_resource_heads h ON h.resource_id = ANY($1::uuid[]) WHERE c.id`, [unknown]);
      if (this.epoch !== epoch) throw new Error('the decoder restarted while reading resource heads');
      if (Number(h.rows[0]?.last_seq) > at.lastSeq) throw new Fenced('another decoder moved the feed');
      for (const id of unknown) this.heads.set(id, 0);
      for (const r of h.rows) if (r.resource_id) this.heads.set(r.resource_id, Number(r.seq));
    }
    let seq = at.lastSeq;
    const events: FeedEvent[] = [];
    const touched = new Map<string, number>();
    for (const tx of fresh) {
      for (const m of tx.messages) {
        seq++;
        const prevSeqs = m.resourceIds.map((id) => this.heads.get(id) ?? 0);
        for (const id of m.resourceIds) {
          this.heads.set(id, seq);
          touched.set(id, seq);
        }
        events.push({ seq, tenantId: m.tenantId, type: m.type, resourceIds: m.resourceIds, data: m.data, slots: m.slots ?? [], prevSeqs, at: tx.at });
      }
    }
    const last = batch[batch.length - 1]!;
    const lsn = lsnValue(last.endLsn) > numberedLsn ? last.endLsn : at.lsn;
    this.numberedAt = { lsn, lastSeq: seq };
    if (events.length) {
      // Numbered: out to the publisher now, stored in its turn.
      this.numbered = seq;
      this.unsent.push(...events);
      // A long bus outage must not hold every event in memory: past this, they are read back from the table.
      if (this.unsent.length > this.maxUnsent) {
        this.opts.log.warn({ unsent: this.unsent.length, max: this.maxUnsent, emitted: this.emitted, lastSeq: seq }, 'feed backlog past its in-memory bound: dropped from memory, it will be read back from the table');
        this.unsent = [];
      }
      void this.publish();
    }
    return { txs: batch, events, touched, after: at, lsn, lastSeq: seq };
  }

  /** Stores numbered batches (in order; BATCH_TXS transactions of the WAL at most) in one transaction, under the cursor's row lock, and acknowledges the WAL. */
  private async store(batches: Numbered[], epoch: number): Promise<void> {
    const cursor = batches[0]!.after;
    const events = batches.flatMap((b) => b.events);
    const touched = new Map(batches.flatMap((b) => [...b.touched]));
    const next = { lsn: batches[batches.length - 1]!.lsn, lastSeq: batches[batches.length - 1]!.lastSeq };
    let emitted = 0;
    const client = await this.opts.pool.connect();
    try {
      await client.query('BEGIN');
      // The fencing token: a decoder that lost the slot (another has stored since) stores nothing.
      const { rows } = await client.query('SELECT lsn::text AS lsn, last_seq FROM feed_cursor WHERE id FOR UPDATE');
      if (Number(rows[0].last_seq) !== cursor.lastSeq || lsnValue(rows[0].lsn) !== lsnValue(cursor.lsn)) throw new Fenced('another decoder moved the feed');
      if (events.length) {
        await client.query(
          `INSERT INTO events (seq, tenant_id, type, resource_ids, data, slots, prev_seqs, created_at)
           SELECT seq, tenant_id, type, resource_ids, data, slots, prev_seqs, created_at
           FROM jsonb_to_recordset($1::jsonb) AS x(seq bigint, tenant_id uuid, type text, resource_ids uuid[], data jsonb, slots jsonb, prev_seqs bigint[], created_at timestamptz)`,
          [JSON.stringify(events.map((e) => ({
            seq: e.seq, tenant_id: e.tenantId, type: e.type, resource_ids: e.resourceIds, data: e.data, slots: e.slots, prev_seqs: e.prevSeqs,
            created_at: new Date(e.at).toISOString(),
          })))],
        );
        const heads = [...touched.entries()];
        await client.query(
          `INSERT INTO feed_resource_heads (resource_id, seq) SELECT * FROM unnest($1::uuid[], $2::bigint[])
           ON CONFLICT (resource_id) DO UPDATE SET seq = EXCLUDED.seq`,
          [heads.map(([id]) => id), heads.map(([, s]) => s)],
        );
      }
      // How far the publisher got goes with it (saveEmitted does not wait behind this transaction's row lock).
      emitted = this.emitted;
      await client.query('UPDATE feed_cursor SET lsn = $1::pg_lsn, last_seq = $2, emitted_seq = greatest(emitted_seq, $3) WHERE id', [next.lsn, next.lastSeq, emitted]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
    // Stored; but if this node has let go of the slot (and maybe taken it again) meanwhile, the cursor it now keeps
    // is another stream's: that stream's first store finds the table moved and restarts.
    if (this.epoch !== epoch) return;
    this.cursor = next;
    this.emittedSaved = Math.max(this.emittedSaved, emitted);
    if (this.opts.observe) {
      const now = Date.now();
      for (const b of batches) for (const tx of b.txs) for (let i = 0; i < tx.messages.length; i++) this.opts.observe('stored', (now - tx.at) / 1000);
    }
    if (this.service && lsnValue(next.lsn) > this.acknowledged) {
      this.acknowledged = lsnValue(next.lsn);
      await acknowledgeAt(this.service, next.lsn).catch(() => {});
    }
    // Events dropped from memory during an outage are read back now that they are stored.
    if (events.length && this.emitted < next.lastSeq) void this.publish();
  }

  /** Emits stored events in seq order, from memory or (after a takeover or an outage) from the table. */
  private publish(): Promise<void> {
    if (this.publishing || !this.leading) return this.publishing ?? Promise.resolve();
    this.publishing = (async () => {
      // Settle nothing before `this.publishing` is assigned (its finally clears it).
      await Promise.resolve();
      try {
        while (this.leading && this.cursor && this.emitted < this.numbered && this.opts.canPublish()) {
          this.unsent = this.unsent.filter((e) => e.seq > this.emitted);
          // From memory when it holds the next seq; else from the table (only stored events are there: none yet, if
          // the next one is still being stored; its store calls this again).
          const batch = this.unsent[0]?.seq === this.emitted + 1 ? this.unsent.splice(0, 1000) : await eventRepository.after(this.opts.pool, this.emitted, 1000);
          if (batch.length === 0) break;
          await this.opts.publish(batch);
          this.emitted = batch[batch.length - 1]!.seq;
          if (this.opts.observe) {
            const now = Date.now();
            for (const e of batch) this.opts.observe('emitted', (now - e.at) / 1000);
          }
        }
        if (this.emitted - this.emittedSaved > 0) await this.saveEmitted();
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'feed batch not emitted; retrying');
      } finally {
        this.publishing = null;
      }
    })();
    return this.publishing;
  }

  private async saveEmitted(): Promise<void> {
    // While a store runs it holds the cursor row, and saves how far the publisher got itself.
    if (!this.leading || this.emitted <= this.emittedSaved || this.storing) return;
    const upto = this.emitted;
    await this.opts.pool.query('UPDATE feed_cursor SET emitted_seq = greatest(emitted_seq, $1) WHERE id', [upto]);
    this.emittedSaved = upto;
  }
}
