/** What every part of the bench shares: the system under test, seeded data, and the result rows. */
import { readFileSync, statSync } from 'node:fs';
import type pg from 'pg';
import type { Api, BenchDb, Node } from './cluster';
import { sleep } from './proc';

export interface Row {
  id: string;
  what: string;
  /** Slotwise's figure. */
  figure: string;
  /** The limit or peer measured in the same run. */
  peer: string;
  ratio: string;
  target: string;
  met: boolean;
  /** One line on how it was measured or why it misses. */
  note?: string;
}

export interface Ctx {
  tmp: string;
  db: BenchDb;
  pool: pg.Pool;
  redisUrl: string;
  A: Node;
  B: Node;
  tenantId: string;
  apiKey: string;
  /** A user token (organizer) of the tenant: browsers hold with these. */
  userToken: string;
  userId: string;
  key: Api;
  /** Midnight UTC tomorrow: every slot the bench uses starts at or after it. */
  baseMs: number;
  rows: Row[];
  log(msg: string): void;
  /** Throws once the run's time is up. */
  checkDeadline(): void;
  /** Environment for extra Slotwise nodes. */
  nodeEnv: Record<string, string>;
}

export interface Trace {
  outside: Map<string, number>;
  transactions: { end: string; statements: string[]; count?: number }[];
  commits: [string, number][];
}

/** Asks a node's SQL trace to write itself out (SIGUSR2) and reads it. */
export async function readTrace(node: Node): Promise<Trace> {
  const before = mtime(node.traceFile);
  node.proc.child.kill('SIGUSR2');
  const deadline = Date.now() + 10_000;
  while (mtime(node.traceFile) === before) {
    if (Date.now() > deadline) throw new Error(`${node.name}: the SQL trace was not written`);
    await sleep(20);
  }
  await sleep(50);
  const raw = JSON.parse(readFileSync(node.traceFile, 'utf8'));
  return { outside: new Map(raw.outside), transactions: raw.transactions, commits: raw.commits };
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** How many times a statement containing `needle` ran outside transactions between two traces. */
export function ranBetween(before: Trace, after: Trace, needle: string): number {
  let n = 0;
  for (const [text, count] of after.outside) if (text.includes(needle)) n += count - (before.outside.get(text) ?? 0);
  return n;
}
