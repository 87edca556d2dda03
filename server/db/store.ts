/**
 * The core's storage ports over Postgres: a unit of work whose repositories
 * are bound to one transaction (or to a pool, for plain reads), the store
 * that hands them out, the Yjs document store, and what a Postgres failure
 * means to a client.
 */
import { problem, type Problem } from '../../shared/errors';
import type { EventType, EventData } from '../core/events';
import type { DocumentStore, Store, Unit } from '../core/store';
import { lostRace, type Db, type Queryable } from './pool';
import { bookingRepository } from './repositories/bookings';
import { calendarFeedRepository } from './repositories/calendar-feeds';
import { apiKeyRepository, userTokenRepository } from './repositories/credentials';
import { eventRepository } from './repositories/events';
import { groupRepository } from './repositories/groups';
import { holdRepository } from './repositories/holds';
import { idempotencyRepository } from './repositories/idempotency';
import { blockRepository, resourceRepository, scheduleRepository } from './repositories/resources';
import { slotRepository } from './repositories/slots';
import { settingsRepository, tenantRepository } from './repositories/tenants';
import { webhookRepository } from './repositories/webhooks';
import { mailRepository } from './repositories/mail';
import { yjsRepository } from './repositories/yjs';

/** A repository whose methods take the connection first, with the connection given. */
type Bound<R> = { [K in keyof R]: R[K] extends (q: Queryable, ...args: infer A) => infer T ? (...args: A) => T : never };

function bind<R extends object>(repo: R, q: Queryable): Bound<R> {
  const bound: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(repo)) bound[name] = (...args: unknown[]) => (fn as (...a: unknown[]) => unknown)(q, ...args);
  return bound as Bound<R>;
}

/** The repositories of one connection, each bound when first used. */
class PgUnit implements Unit {
  constructor(private readonly q: Queryable) {}
  #tenants?: Unit['tenants'];
  #settings?: Unit['settings'];
  #apiKeys?: Unit['apiKeys'];
  #userTokens?: Unit['userTokens'];
  #resources?: Unit['resources'];
  #schedules?: Unit['schedules'];
  #blocks?: Unit['blocks'];
  #slots?: Unit['slots'];
  #holds?: Unit['holds'];
  #bookings?: Unit['bookings'];
  #groups?: Unit['groups'];
  #events?: Unit['events'];
  #idempotency?: Unit['idempotency'];
  #webhooks?: Unit['webhooks'];
  #calendarFeeds?: Unit['calendarFeeds'];
  #mail?: Unit['mail'];
  get tenants() { return (this.#tenants ??= bind(tenantRepository, this.q)); }
  get settings(): Unit['settings'] {
    const q = this.q;
    return (this.#settings ??= {
      getOrInit: <T>(key: string, fallback: T) => settingsRepository.getOrInit(q, key, fallback),
      get: <T>(key: string) => settingsRepository.get<T>(q, key),
    });
  }
  get apiKeys() { return (this.#apiKeys ??= bind(apiKeyRepository, this.q)); }
  get userTokens() { return (this.#userTokens ??= bind(userTokenRepository, this.q)); }
  get resources() { return (this.#resources ??= bind(resourceRepository, this.q)); }
  get schedules() { return (this.#schedules ??= bind(scheduleRepository, this.q)); }
  get blocks() { return (this.#blocks ??= bind(blockRepository, this.q)); }
  get slots() { return (this.#slots ??= bind(slotRepository, this.q)); }
  get holds() { return (this.#holds ??= bind(holdRepository, this.q)); }
  get bookings() { return (this.#bookings ??= bind(bookingRepository, this.q)); }
  get groups() { return (this.#groups ??= bind(groupRepository, this.q)); }
  get events(): Unit['events'] {
    const q = this.q;
    return (this.#events ??= {
      ...bind(eventRepository, q),
      append: <T extends EventType>(tenantId: string, type: T, resourceIds: string[], data: EventData[T]) => eventRepository.append(q, tenantId, type, resourceIds, data),
    });
  }
  get idempotency() { return (this.#idempotency ??= bind(idempotencyRepository, this.q)); }
  get webhooks() { return (this.#webhooks ??= bind(webhookRepository, this.q)); }
  get calendarFeeds() { return (this.#calendarFeeds ??= bind(calendarFeedRepository, this.q)); }
  get mail() { return (this.#mail ??= bind(mailRepository, this.q)); }
}

// One unit per connection: the statements of a request's ambient transaction share it.
const units = new WeakMap<object, PgUnit>();
const unitOf = (q: Queryable): Unit => {
  let u = units.get(q);
  if (!u) units.set(q, (u = new PgUnit(q)));
  return u;
};

/** What runs transactions: the node's request pools, or its background ones. */
type Runner = Pick<Db, 'tx' | 'autocommit'> & { pool: Queryable; readPool: Queryable };

/** The Store port over a Db: request work (the default), background work (`db.background`) or the integrations' (`db.integrations`). */
export class PgStore implements Store {
  readonly primary: Unit;
  readonly replica: Unit;
  private readonly runner: Runner;

  constructor(private readonly db: Db, which: 'requests' | 'background' | 'integrations' = 'requests') {
    this.runner = which === 'requests' ? db : which === 'background' ? db.background : db.integrations;
    this.primary = unitOf(this.runner.pool);
    this.replica = unitOf(this.runner.readPool);
  }

  tx<T>(fn: (t: Unit) => Promise<T>, afterCommit?: () => void | Promise<void>): Promise<T> {
    return this.runner.tx((c) => fn(unitOf(c)), afterCommit);
  }

  autocommit<T>(fn: (t: Unit) => Promise<T | null>, afterCommit?: () => void | Promise<void>): Promise<T | null> {
    return this.runner.autocommit((c) => fn(unitOf(c)), afterCommit);
  }

  ambient<T>(fn: (t: Unit) => Promise<{ commit: boolean; value: T }>): Promise<T> {
    return this.db.ambientTx((c) => fn(unitOf(c)));
  }

  explain(err: unknown, log: { warn(obj: object, msg?: string): void }): Problem | null {
    return explainPostgresError(err, log);
  }
}

// Postgres failures that mean "the database is not reachable right now".
const UNAVAILABLE = /^(08|57P0|53)/;
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);

/** What a Postgres (or pg driver) failure means to the client, or null when err is something else. */
export function explainPostgresError(err: unknown, log: { warn(obj: object, msg?: string): void }): Problem | null {
  const e = (err ?? {}) as { code?: string; message?: string; constraint?: string };
  if (e.code === '23514' && e.constraint === 'slot_no_oversell') return problem('slot-unavailable', 'the seats were taken concurrently');
  // Text the database cannot store (a NUL that came in through a path parameter or a document): the client's input.
  if (e.code === '22021' || e.code === '22P05') return problem('validation-failed', 'a text value contains a character that cannot be stored (such as NUL)');
  // A value of the wrong form or out of range that got past the schemas (an id, a time): still the client's input.
  if (e.code === '22P02' || e.code === '22007' || e.code === '22008' || e.code === '22003') {
    log.warn({ err: e.message }, 'input the schemas let through was refused by Postgres');
    return problem('validation-failed', 'a value in the request is not valid');
  }
  // A statement past statement_timeout was cancelled (its transaction with it): nothing was written.
  if (e.code === '57014') {
    log.warn({ err: e.message }, 'statement cancelled at its deadline');
    return problem('deadline-exceeded', 'the database did not finish the request in time; nothing was changed. Retry, or ask for less', { limit: 'db.statement_timeout', retryAfter: 1 });
  }
  // Lost a deadlock or serialization race after the retries (or inside an Idempotency-Key request, which is
  // not retried): nothing was written, and the same request is expected to succeed when sent again.
  if (lostRace(err)) {
    log.warn({ err: e.message }, 'transaction lost a concurrency race');
    return problem('unavailable', 'the request collided with a concurrent change and was not applied; retry it');
  }
  if ((e.code && (UNAVAILABLE.test(e.code) || NETWORK.has(e.code))) || /timeout exceeded when trying to connect|Connection terminated|not queryable/i.test(e.message ?? '')) {
    log.warn({ err: e.message }, 'database unavailable');
    return problem('unavailable', 'the database is not reachable; retry shortly');
  }
  return null;
}

/** The Yjs document store: appends and compaction on the connections of Yjs storage (asynchronous commit). */
export function pgDocumentStore(db: Db): DocumentStore {
  return {
    append: (docName, update) => yjsRepository.append(db.asyncCommitPool, docName, update),
    load: (docName, opts) => yjsRepository.load(opts?.fresh ? db.asyncCommitPool : db.pool, docName),
    async compact(docName, merge) {
      // One REPEATABLE READ snapshot for the read and the delete: the DELETE removes exactly the rows merged,
      // never one another node committed meanwhile with a lower id.
      const client = await db.asyncCommitPool.connect();
      let broken = false;
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        const { updates, lastId } = await yjsRepository.load(client, docName);
        const merged = merge(updates);
        if (merged) await yjsRepository.compact(client, docName, lastId, merged);
        await client.query('COMMIT');
        return updates.length;
      } catch (err) {
        broken = await client.query('ROLLBACK').then(() => false, () => true);
        // Another node compacted the same rows first: nothing lost, nothing to do.
        if ((err as { code?: string }).code === '40001') return null;
        throw err;
      } finally {
        client.release(broken);
      }
    },
  };
}
