/**
 * Group commit for the fast-path writes: the one-statement writes of
 * concurrent requests go to Postgres several to a statement, so they share one
 * round trip, one socket write, one transaction and one WAL flush
 * (docs/architecture.md, "Group commit").
 *
 * A request's write waits, at most, for the end of the current event-loop
 * turn, or for one of `maxInFlight` batches to come back; then everything
 * waiting of its kind goes in one statement (at most `maxBatch`). A batch is
 * one implicit transaction: all of it commits or none of it. When Postgres
 * refuses it with an error (a deadlock, or one item's bad data), nothing of it
 * was written, and each item is run again alone, so one item's failure is
 * that item's answer only. A lost connection fails the whole batch, as it
 * fails a lone statement: whether it committed is unknown, and nothing is
 * run twice.
 */
import type pg from 'pg';

/** One kind of write that can be batched. */
export interface BatchKind<I, O> {
  /** The item alone, in its own statement. */
  one(q: pg.PoolClient, item: I): Promise<O>;
  /** Several items in one statement; results in the items' order. */
  many(q: pg.PoolClient, items: I[]): Promise<O[]>;
  /** Sorts a batch so that every batch takes its row locks in one order (none waits for another in a cycle). */
  compare?(a: I, b: I): number;
}

/** What every fast-path write names (holds.ts, bookings.ts): resources sorted, their versions in that order. */
export interface FastWrite {
  tenantId: string;
  ownerId: string | null;
  resourceIds: string[];
  versions: number[];
  start: Date;
  end: Date;
  seats: number;
  /** The event message's pieces (events.ts messageParts). */
  message: string[];
}

/** The order every writer locks slots in: by first resource, then start (for `BatchKind.compare`). */
export const lockOrder = (a: FastWrite, b: FastWrite): number =>
  a.resourceIds[0]! < b.resourceIds[0]! ? -1 : a.resourceIds[0]! > b.resourceIds[0]! ? 1 : a.start.getTime() - b.start.getTime();

interface Waiting<I, O> {
  item: I;
  /** When it was submitted (performance.now()). */
  at: number;
  resolve(out: O): void;
  reject(err: unknown): void;
}

/**
 * Errors after which a batch is known to have written nothing and each item
 * may be run alone: Postgres rolled the statement back (class 40: deadlock,
 * serialization) or refused some item's data (classes 22, 23). Anything else
 * (a lost connection, a timeout, a shutdown) is every item's answer.
 */
const runAlone = (err: unknown): boolean => /^(40|22|23)/.test((err as { code?: string } | null)?.code ?? '');

export class Batcher {
  private readonly queues = new Map<BatchKind<any, any>, Waiting<any, any>[]>();
  private waiting = 0;
  private inFlight = 0;
  private scheduled = false;
  /** Batches sent and items written in them (for metrics and tests). */
  readonly stats = { batches: 0, items: 0, largest: 0, alone: 0, waitMs: 0, runMs: 0 };

  /**
   * `maxInFlight`: statements out at once. Under P1's load (64 connections,
   * 2 cores) 4 gave 1,040 holds/s, 8 gave 1,631 and 1,342, 16 gave 1,027
   * (one run each, docs/benchmarks.md): enough that Postgres always has the
   * next batch while one waits for its WAL flush, few enough that batches
   * stay large.
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly maxInFlight = 8,
    private readonly maxBatch = 64,
  ) {}

  /** Writes waiting for a batch. */
  get queued(): number {
    return this.waiting;
  }

  /** The statements the waiting writes will take (each a connection's turn): what they weigh against the pool's queue. */
  get queuedStatements(): number {
    return Math.ceil(this.waiting / this.maxBatch);
  }

  submit<I, O>(kind: BatchKind<I, O>, item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      let queue = this.queues.get(kind);
      if (!queue) this.queues.set(kind, (queue = []));
      queue.push({ item, resolve, reject, at: performance.now() });
      this.waiting++;
      if (!this.scheduled) {
        this.scheduled = true;
        // The rest of this turn's requests join it.
        setImmediate(() => {
          this.scheduled = false;
          this.drain();
        });
      }
    });
  }

  private drain(): void {
    for (const [kind, queue] of this.queues) {
      while (queue.length > 0 && this.inFlight < this.maxInFlight) {
        const batch = queue.splice(0, this.maxBatch);
        this.waiting -= batch.length;
        this.inFlight++;
        this.run(kind, batch).finally(() => {
          this.inFlight--;
          this.drain();
        });
      }
    }
  }

  private async run<I, O>(kind: BatchKind<I, O>, batch: Waiting<I, O>[]): Promise<void> {
    let client: pg.PoolClient;
    const start = performance.now();
    for (const w of batch) this.stats.waitMs += start - w.at;
    try {
      client = await this.pool.connect();
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    let broken = false;
    try {
      this.stats.batches++;
      this.stats.items += batch.length;
      this.stats.largest = Math.max(this.stats.largest, batch.length);
      if (batch.length === 1) {
        await settle(batch[0]!, () => kind.one(client, batch[0]!.item));
        return;
      }
      const sorted = kind.compare ? [...batch].sort((a, b) => kind.compare!(a.item, b.item)) : batch;
      let out: O[];
      try {
        out = await kind.many(client, sorted.map((w) => w.item));
      } catch (err) {
        if (!runAlone(err)) {
          broken = !(err as { code?: string }).code;
          for (const w of sorted) w.reject(err);
          return;
        }
        this.stats.alone += sorted.length;
        for (const w of sorted) await settle(w, () => kind.one(client, w.item));
        return;
      }
      sorted.forEach((w, i) => w.resolve(out[i]!));
    } finally {
      client.release(broken);
      this.stats.runMs += performance.now() - start;
    }
  }
}

async function settle<I, O>(w: Waiting<I, O>, run: () => Promise<O>): Promise<void> {
  try {
    w.resolve(await run());
  } catch (err) {
    w.reject(err);
  }
}

/**
 * The connection of an autocommit unit (pool.ts `autocommit`), taken from the
 * pool at its first statement rather than up front. A unit that has taken
 * none can hand its one write to the batcher instead.
 */
export class LazyConnection {
  private client: pg.PoolClient | null = null;
  private taking: Promise<pg.PoolClient> | null = null;
  private released = false;

  constructor(
    private readonly pool: pg.Pool,
    readonly batcher: Batcher,
  ) {}

  /** True once a statement took a connection. */
  get connected(): boolean {
    return this.taking !== null;
  }

  query(config: any, values?: any): Promise<any> {
    this.taking ??= this.pool.connect().then((c) => {
      if (this.released) c.release();
      return (this.client = c);
    });
    return this.taking.then((c) => c.query(config, values));
  }

  release(): void {
    this.released = true;
    if (this.client) this.client.release();
    this.client = null;
  }
}
