/** The pg pool, transactions, and the ambient transaction an edge may open around a request. */
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { Batcher, LazyConnection } from './batch';

/** Anything that can run a query: the pool or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

type AfterCommit = () => void | Promise<void>;

interface TxContext {
  client: pg.PoolClient;
  afterCommit: AfterCommit[];
}

// Postgres codes worth one more try: the statement lost a race it could not
// know about in advance (deadlock, serialization failure).
const RETRYABLE = new Set(['40P01', '40001']);

/** True when err is Postgres aborting a transaction that lost a race (deadlock, serialization): it wrote nothing, and may be run again. */
export const lostRace = (err: unknown): boolean => RETRYABLE.has((err as { code?: string } | null)?.code ?? '');

/** What a transaction wrote that others may have cached (recorded by the event repository). */
export interface CommittedChange {
  tenantId: string;
  type: string;
  resourceIds: string[];
}

// Changes noted per transaction client, handed to `onCommit` listeners once the COMMIT returns.
const noted = new WeakMap<object, CommittedChange[]>();

/** Notes a change made inside the transaction of `q` (no-op outside one). */
export function noteChange(q: Queryable, change: CommittedChange): void {
  noted.get(q)?.push(change);
}

// timestamptz and int8 come back as numbers/strings we control.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export interface DbOptions {
  readUrl?: string;
  max?: number;
  onError?: (err: Error) => void;
  /** statement_timeout of request connections (background ones get at least 30 s). */
  statementTimeoutMs?: number;
  /** idle_in_transaction_session_timeout of every connection. */
  idleInTransactionTimeoutMs?: number;
  /** Requests that may wait for a connection before `saturated()` (0: no bound; default twice the pool). */
  queueMax?: number;
}

/** The database handle every repository and service receives. */
export class Db {
  readonly pool: pg.Pool;
  readonly readPool: pg.Pool;
  /**
   * Two connections of the feed decoder's own (server/db/feed.ts): storing and
   * publishing events must not queue behind the requests waiting for the main
   * pool (the bench saw commit → subscriber latency dominated by that wait).
   */
  readonly relayPool: pg.Pool;
  /**
   * Connections whose commits do not wait for the WAL flush
   * (`synchronous_commit = off`): for Yjs updates only. A committed row is
   * visible to every node at once, as with any commit; what a Postgres crash
   * can lose is the last few hundred milliseconds of updates, which the
   * node's live document and every connected client still hold and
   * y-websocket's sync hands back. The fsync was the largest part of an
   * edit's way from one node to the other (docs/benchmarks.md, P5). Yjs
   * compaction (one transaction: lost whole or kept whole) and refills use
   * it too, so Yjs persistence has capacity nothing else takes.
   */
  readonly asyncCommitPool: pg.Pool;
  private readonly ambient = new AsyncLocalStorage<TxContext>();
  private readonly commitListeners: ((changes: CommittedChange[]) => void)[] = [];

  /**
   * Calls `fn` with what each transaction noted, right after its COMMIT and
   * before its after-commit hooks run (so before the request answers).
   */
  onCommit(fn: (changes: CommittedChange[]) => void): void {
    this.commitListeners.push(fn);
  }

  private committed(client: object): void {
    const changes = noted.get(client);
    noted.delete(client);
    if (changes?.length) for (const fn of this.commitListeners) fn(changes);
  }

  /**
   * Connections for background work (the hold sweeper, the slot horizon,
   * purges): neither requests nor Yjs storage
   * (which has asyncCommitPool) can take them, so expiry stays on time
   * however busy the rest is.
   */
  readonly backgroundPool: pg.Pool;
  /** The Store of background work: transactions on `backgroundPool`, never joining a request's. */
  readonly background: { tx: Db['tx']; autocommit: Db['autocommit']; pool: pg.Pool; readPool: pg.Pool };
  /**
   * Connections of the integrations (the job queue, webhook dispatch and
   * delivery): their own, so a backlog of deliveries neither delays expiry
   * on the background pool nor takes connections from requests.
   */
  readonly integrationPool: pg.Pool;
  readonly integrations: Db['background'];

  constructor(url: string, opts: DbOptions = {}) {
    const statement = opts.statementTimeoutMs ?? 5_000;
    const idle = opts.idleInTransactionTimeoutMs ?? 10_000;
    // Every statement has a deadline, and a transaction left open (a wedged client) is cut: no request can
    // hold a connection or a row lock for longer. Background work gets a longer statement deadline.
    const guard = (ms: number) => `-c statement_timeout=${ms} -c idle_in_transaction_session_timeout=${idle}`;
    const slow = Math.max(30_000, statement * 6);
    const common = { max: opts.max ?? 20, connectionTimeoutMillis: 3_000, idleTimeoutMillis: 30_000 };
    this.pool = new pg.Pool({ connectionString: url, ...common, options: guard(statement) });
    this.readPool = opts.readUrl ? new pg.Pool({ connectionString: opts.readUrl, ...common, options: guard(statement) }) : this.pool;
    // The feed decoder: its store, its reads of resource heads (which must not wait behind a long store), and the
    // publisher's reads back from the table and `emitted_seq` saves.
    this.relayPool = new pg.Pool({ connectionString: url, ...common, max: 3, options: guard(slow) });
    this.asyncCommitPool = new pg.Pool({ connectionString: url, ...common, max: 4, options: `-c synchronous_commit=off ${guard(slow)}` });
    this.backgroundPool = new pg.Pool({ connectionString: url, ...common, max: 3, options: guard(slow) });
    this.integrationPool = new pg.Pool({ connectionString: url, ...common, max: 4, options: guard(slow) });
    this.queueBound = opts.queueMax ?? 2 * common.max;
    this.batcher = new Batcher(this.pool);
    const onError = opts.onError ?? (() => {});
    const pools = new Set([this.pool, this.readPool, this.relayPool, this.asyncCommitPool, this.backgroundPool, this.integrationPool]);
    // An idle client losing its connection must not crash the process. Nor may a checked-out one between
    // two queries (the pool only listens to idle clients): its next query fails instead, and the transaction with it.
    for (const p of pools) {
      p.on('error', onError);
      p.on('connect', (client) => client.on('error', onError));
    }
    const runnerOn = (own: pg.Pool): Db['background'] => ({
      tx: (fn, afterCommit) => this.retrying(() => this.ownTx(own, fn), afterCommit),
      autocommit: (fn, afterCommit) => this.autocommitOn(own, fn, afterCommit),
      pool: own,
      readPool: own,
    });
    this.background = runnerOn(this.backgroundPool);
    this.integrations = runnerOn(this.integrationPool);
  }

  private readonly queueBound: number;
  /** Fast-path holds and direct bookings of concurrent requests, written several to a statement (batch.ts). */
  readonly batcher: Batcher;

  /**
   * True when more requests wait for a connection than the queue bound (by default twice the pool), writes waiting
   * for a batch counting as the statements they will take: new work is refused fast (503) rather than queued for seconds.
   */
  saturated(): boolean {
    return this.queueBound > 0 && this.pool.waitingCount + this.batcher.queuedStatements > this.queueBound;
  }

  /** Runs fn in a transaction; joins the ambient one when a request opened it. */
  async tx<T>(fn: (q: pg.PoolClient) => Promise<T>, afterCommit?: AfterCommit): Promise<T> {
    const ctx = this.ambient.getStore();
    if (ctx) {
      const result = await fn(ctx.client);
      if (afterCommit) ctx.afterCommit.push(afterCommit);
      return result;
    }
    return this.retrying(() => this.ownTx(this.pool, fn), afterCommit);
  }

  /** Runs a transaction up to three times while it loses deadlock or serialization races, then its after-commit hook. */
  private async retrying<T>(run: () => Promise<T>, afterCommit?: AfterCommit): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await run();
        await afterCommit?.();
        return result;
      } catch (err) {
        if (attempt < 3 && lostRace(err)) continue;
        throw err;
      }
    }
  }

  /**
   * Runs fn, whose statements are each complete on their own (reads, and at
   * most one statement that writes, atomically by itself), without
   * BEGIN/COMMIT: two round trips fewer than `tx`. Inside a request's ambient
   * transaction it joins that instead. Changes fn notes reach the commit
   * listeners when it returns; afterCommit runs when fn returned something
   * other than null (null: fn wrote nothing, and the caller goes on another way).
   */
  async autocommit<T>(fn: (q: pg.PoolClient) => Promise<T | null>, afterCommit?: AfterCommit): Promise<T | null> {
    const ctx = this.ambient.getStore();
    if (ctx) {
      const result = await fn(ctx.client);
      if (afterCommit && result !== null) ctx.afterCommit.push(afterCommit);
      return result;
    }
    return this.autocommitOn(this.pool, fn, afterCommit);
  }

  private async autocommitOn<T>(pool: pg.Pool, fn: (q: pg.PoolClient) => Promise<T | null>, afterCommit?: AfterCommit): Promise<T | null> {
    for (let attempt = 1; ; attempt++) {
      // A connection is taken at fn's first statement, not before: fn may need none (remembered rows and a
      // batched write, holds.ts createFast), and a request waiting for its turn in a batch holds none.
      const client = new LazyConnection(pool, this.batcher);
      let result: T | null;
      try {
        noted.set(client, []);
        result = await fn(client as unknown as pg.PoolClient);
      } catch (err) {
        // A statement that lost a deadlock wrote nothing (it was its own transaction): run fn again, as `tx` does.
        if (attempt < 3 && lostRace(err)) continue;
        throw err;
      } finally {
        // Whatever was noted was written by a statement that returned, so it is committed.
        this.committed(client);
        client.release();
      }
      if (result !== null) await afterCommit?.();
      return result;
    }
  }

  /**
   * Opens a transaction that every `tx` call inside `fn` joins, so an edge can
   * make the request and its idempotency record one atomic unit. `fn` decides
   * to commit by returning `{commit: true}`.
   */
  async ambientTx<T>(fn: (q: pg.PoolClient) => Promise<{ commit: boolean; value: T }>): Promise<T> {
    const client = await this.pool.connect();
    const ctx: TxContext = { client, afterCommit: [] };
    let result: { commit: boolean; value: T };
    let broken = false;
    try {
      await client.query('BEGIN');
      noted.set(client, []);
      result = await this.ambient.run(ctx, () => fn(client));
      await client.query(result.commit ? 'COMMIT' : 'ROLLBACK');
      if (result.commit) this.committed(client);
    } catch (err) {
      broken = await client.query('ROLLBACK').then(() => false, () => true);
      throw err;
    } finally {
      noted.delete(client);
      client.release(broken);
    }
    // Hooks run after the client is back in the pool: they may need a connection themselves.
    if (result.commit) for (const hook of ctx.afterCommit) await hook();
    return result.value;
  }

  private async ownTx<T>(pool: pg.Pool, fn: (q: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      noted.set(client, []);
      const result = await fn(client);
      await client.query('COMMIT');
      this.committed(client);
      return result;
    } catch (err) {
      broken = await client.query('ROLLBACK').then(() => false, () => true);
      throw err;
    } finally {
      noted.delete(client);
      client.release(broken);
    }
  }

  /** Closes the pools, once their connections have closed. */
  async close(): Promise<void> {
    await endPool(this.relayPool);
    await endPool(this.asyncCommitPool);
    await endPool(this.backgroundPool);
    await endPool(this.integrationPool);
    await endPool(this.pool);
    if (this.readPool !== this.pool) await endPool(this.readPool);
  }
}

/**
 * pool.end() resolves as soon as no client is left in the pool, before their
 * connections have closed; a Postgres stopped right after (the embedded one,
 * at shutdown) would cut those and they would be logged as lost. Wait for
 * each client's 'remove' (its connection ended), for at most 2 s.
 */
async function endPool(pool: pg.Pool): Promise<void> {
  let open = pool.totalCount;
  const closed = new Promise<void>((resolve) => {
    if (open === 0) return resolve();
    pool.on('remove', () => {
      if (--open <= 0) resolve();
    });
    setTimeout(resolve, 2000).unref();
  });
  await pool.end();
  await closed;
}

/**
 * A named statement: Postgres parses and plans it once per connection instead
 * of on every call (the hot paths of holds, bookings, the feed and
 * availability use these). `name` must be unique to `text`.
 */
export function named(name: string, text: string, values: unknown[]): pg.QueryConfig {
  return { name: `sw.${name}`, text, values };
}
