/** What the core needs from the outside world, as interfaces the composition root fills. */
import type { Queryable } from '../db/pool';
import type { Clock } from './types';

/** Transactions and reads; the db layer implements it. */
export interface Store {
  /** Runs fn in a transaction (joining a request's ambient one); afterCommit runs once it is durable. */
  tx<T>(fn: (q: Queryable) => Promise<T>, afterCommit?: () => void | Promise<void>): Promise<T>;
  /** Where plain writes and consistent reads go. */
  pool: Queryable;
  /** Where availability reads go (a replica when configured). */
  readPool: Queryable;
}

/** Numbers committed events and hands them on; `flush` resolves once everything committed so far is numbered. */
export interface Outbox {
  flush(): Promise<void>;
}

export interface CoreConfig {
  holdTtlSeconds: number;
  holdMinTtlSeconds: number;
  slotHorizonDays: number;
}

export interface Logger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
}

export interface CoreDeps {
  store: Store;
  outbox: Outbox;
  clock: Clock;
  config: CoreConfig;
  log: Logger;
}
