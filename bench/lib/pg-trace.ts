/**
 * Preloaded into Slotwise nodes by the bench (`node --import tsx --import
 * ./bench/lib/pg-trace.ts server/main.ts`); the server itself is unchanged.
 * It wraps pg's Client#query to record, cheaply:
 *
 * - how often each statement text ran outside a transaction (the outbox relay's
 *   statements go through the pool), keyed by the literal text;
 * - the statements of each distinct kind of write transaction (up to
 *   BENCH_TRACE_TX kinds), in order, with how it ended (so the bench can check its pgbench scripts run the
 *   very statements the server runs);
 *   A one-statement write outside a transaction (the fast paths of
 *   migration 003) is recorded the same way, with the statement the client
 *   ran just before it, ending in AUTOCOMMIT;
 * - for bookings whose metadata carries `benchKey`, when their COMMIT (or
 *   their one-statement write) returned, on CLOCK_MONOTONIC (P4: commit on
 *   node A → client on node B).
 *
 * On SIGUSR2 it writes all of it as JSON to BENCH_TRACE_FILE.
 */
import { writeFileSync } from 'node:fs';
import pg from 'pg';

const file = process.env.BENCH_TRACE_FILE;
let txBudget = Number(process.env.BENCH_TRACE_TX ?? 400);
const outside = new Map<string, number>();
const transactions: { end: string; statements: string[]; count?: number }[] = [];
// The fast paths' shapes, with their counts.
const fastOps = new Map<string, { end: string; statements: string[]; count: number }>();
const commits: [string, number][] = [];
// Each distinct statement sequence once: a hold run repeats one shape thousands of times.
const seen = new Set<string>();

interface ClientState {
  inTx: boolean;
  tx: string[] | null;
  benchKey: string | null;
  /** The statement this client ran last outside a transaction. */
  lastOutside: string | null;
}
const states = new WeakMap<object, ClientState>();
const stateOf = (c: object) => {
  let s = states.get(c);
  if (!s) states.set(c, (s = { inTx: false, tx: null, benchKey: null, lastOutside: null }));
  return s;
};
const now = () => Number(process.hrtime.bigint()) / 1e6;
const FAST = /\b(create_hold_fast|create_booking_fast)\(/;

function keyIn(values: unknown): string | null {
  return keysIn(values)[0] ?? null;
}

/**
 * The benchKeys among a statement's parameters: metadata objects, or (a
 * batch of direct bookings, server/db/batch.ts) an array of metadata JSON texts.
 */
function keysIn(values: unknown): string[] {
  if (!Array.isArray(values)) return [];
  const keys: string[] = [];
  for (const v of values) {
    if (v && typeof v === 'object' && typeof (v as { benchKey?: unknown }).benchKey === 'string') keys.push((v as { benchKey: string }).benchKey);
    else if (Array.isArray(v)) {
      for (const e of v) {
        // Metadata texts are whole JSON objects; other columns (the event message's pieces) may mention benchKey too.
        if (typeof e !== 'string' || !e.startsWith('{') || !e.includes('"benchKey"')) continue;
        let key: unknown;
        try {
          key = (JSON.parse(e) as { benchKey?: unknown }).benchKey;
        } catch {
          continue;
        }
        if (typeof key === 'string') keys.push(key);
      }
    }
  }
  return keys;
}

const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
pg.Client.prototype.query = function traced(this: object, ...args: unknown[]) {
  const config = args[0] as string | { text?: string; values?: unknown[] } | undefined;
  const text = typeof config === 'string' ? config : config?.text;
  if (typeof text !== 'string') return original.apply(this, args);
  const st = stateOf(this);
  let onDone: (() => void) | null = null;
  if (text === 'BEGIN' || text.startsWith('BEGIN ')) {
    st.inTx = true;
    st.tx = txBudget > 0 ? [text] : null;
    st.benchKey = null;
  } else if (text === 'COMMIT' || text === 'ROLLBACK') {
    const tx = st.tx;
    const key = st.benchKey;
    st.inTx = false;
    st.tx = null;
    st.benchKey = null;
    if (tx && txBudget > 0 && tx.some((s) => /^\s*(WITH|INSERT|UPDATE|DELETE)/i.test(s) || s.includes('FOR UPDATE OF s'))) {
      tx.push(text);
      const shape = tx.join('\u0000');
      if (!seen.has(shape)) {
        seen.add(shape);
        transactions.push({ end: text, statements: tx });
        txBudget--;
      }
    }
    if (key && text === 'COMMIT') onDone = () => void commits.push([key, now()]);
  } else if (!st.inTx && FAST.test(text)) {
    // A one-statement write (migration 003's fast paths): its own transaction, after the
    // resources read on the same client when the node read them for it (a node that remembers
    // them sends the write alone, migration 006). Recorded as an operation ending in AUTOCOMMIT,
    // with how often that shape ran.
    const op = st.lastOutside && /\bFROM resources WHERE\b/.test(st.lastOutside) ? [st.lastOutside, text] : [text];
    const shape = op.join('\u0000');
    const known = fastOps.get(shape);
    if (known) known.count++;
    else if (txBudget > 0) {
      const entry = { end: 'AUTOCOMMIT', statements: op, count: 1 };
      fastOps.set(shape, entry);
      transactions.push(entry);
      txBudget--;
    }
    outside.set(text, (outside.get(text) ?? 0) + 1);
    st.lastOutside = text;
    // Its commit returns with the statement; a batch commits every booking in it at once.
    const keys = text.includes('create_booking_fast') ? keysIn(Array.isArray(args[1]) ? args[1] : typeof config === 'object' ? config?.values : null) : [];
    if (keys.length) onDone = () => {
      const at = now();
      for (const key of keys) commits.push([key, at]);
    };
  } else {
    if (st.tx) st.tx.push(text);
    else if (!st.inTx) {
      outside.set(text, (outside.get(text) ?? 0) + 1);
      st.lastOutside = text;
    }
    if (text.includes('INSERT INTO bookings')) st.benchKey = keyIn(Array.isArray(args[1]) ? args[1] : typeof config === 'object' ? config?.values : null);
  }
  const cb = onDone ? args.findIndex((a) => typeof a === 'function') : -1;
  if (cb >= 0) {
    const fn = args[cb] as (...a: unknown[]) => void;
    args[cb] = (...a: unknown[]) => (onDone!(), fn(...a));
  }
  const result = original.apply(this, args);
  if (onDone && cb < 0 && result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(onDone, () => {});
  return result;
} as typeof pg.Client.prototype.query;

process.on('SIGUSR2', () => {
  if (!file) return;
  writeFileSync(file, JSON.stringify({ outside: [...outside], transactions, commits }));
});
