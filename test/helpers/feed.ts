/**
 * Reading the event feed (GET /v1/events) and live Socket.IO deliveries in a
 * way that does not assume an event is visible by the time the request that
 * caused it has answered: the feed may lag its commits by a few milliseconds,
 * so tests poll until what they expect is there, and fail naming what is not.
 */
import { checkAnswer } from './contract';

/** One event of GET /v1/events. */
export interface FeedEvent {
  seq: number;
  type: string;
  resourceIds: string[];
  data: any;
  at: string;
}

export interface ReadFeedOptions {
  /** Read events after this seq (0: from the start). */
  after?: number;
  /** Stop once this returns true for every event read so far (default: the first poll's events are enough). */
  until?: (events: FeedEvent[]) => boolean;
  /** Give up after this long (default 8 s); the error says what `describe` reports as missing. */
  timeoutMs?: number;
  /** Once `until` holds, keep reading this long to catch events that should not be there (default 0). */
  settleMs?: number;
  /** Names what is still missing, for the timeout message (default: the number of events read). */
  describe?: (events: FeedEvent[]) => string;
  /** Page size (1–1000). */
  limit?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One pass over the feed after `after`, following its paging (`after=lastSeq`) to the end. */
async function drain(url: string, apiKey: string, after: number, limit: number): Promise<{ events: FeedEvent[]; lastSeq: number }> {
  const events: FeedEvent[] = [];
  let cursor = after;
  for (;;) {
    const path = `/v1/events?after=${cursor}&limit=${limit}`;
    const res = await fetch(url + path, { headers: { Authorization: `Bearer ${apiKey}` } });
    const text = await res.text();
    await checkAnswer(url, { method: 'GET', path, status: res.status, contentType: res.headers.get('content-type'), text });
    // The node could not confirm within its wait that the feed holds every earlier commit (the decoder lags, as it
    // may on a loaded machine): nothing is read this pass; the caller polls again until its own deadline.
    if (res.status === 503 && text.includes('"feed.wait"')) return { events, lastSeq: cursor };
    if (res.status !== 200) throw new Error(`GET /v1/events?after=${cursor}: ${res.status} ${text}`);
    const page = JSON.parse(text) as { events: FeedEvent[]; lastSeq: number };
    for (const e of page.events) {
      if (!(e.seq > cursor)) throw new Error(`feed went backwards: seq ${e.seq} after ${cursor}`);
      cursor = e.seq;
      events.push(e);
    }
    // Resume where the page says it stopped (never behind what was read).
    if (typeof page.lastSeq === 'number' && page.lastSeq > cursor) cursor = page.lastSeq;
    if (page.events.length === 0) return { events, lastSeq: cursor };
  }
}

/**
 * Polls the tenant's feed until `until(events)` holds for all events read
 * since `after`, and returns them (oldest first). Checks on the way that seq
 * only grows and that paging resumes where it stopped. Throws after
 * `timeoutMs` with `describe(events)` (what is missing) in the message.
 */
export async function readFeedUntil(url: string, apiKey: string, opts: ReadFeedOptions = {}): Promise<FeedEvent[]> {
  const { after = 0, until = () => true, timeoutMs = 8_000, settleMs = 0, limit = 1000 } = opts;
  const describe = opts.describe ?? ((events: FeedEvent[]) => `${events.length} event(s) read`);
  const events: FeedEvent[] = [];
  let cursor = after;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await drain(url, apiKey, cursor, limit);
    events.push(...got.events);
    cursor = got.lastSeq;
    if (until(events)) break;
    if (Date.now() > deadline) throw new Error(`the event feed did not have what was expected after ${timeoutMs} ms: ${describe(events)}`);
    await sleep(50);
  }
  if (settleMs > 0) {
    // Late events (ones that should not exist at all) get a chance to show.
    await sleep(settleMs);
    events.push(...(await drain(url, apiKey, cursor, limit)).events);
  }
  return events;
}

/**
 * Waits until the node answers a feed read with 200: it answers only once the
 * decoder has stored every transaction committed before the read (a WAL mark
 * it writes and waits for), so counts of the `events` table taken afterwards
 * include every event of the changes made so far. Use it before snapshots
 * that compare row counts, where a lagging decoder would otherwise store
 * events between the "before" and the "after".
 */
export async function feedCaughtUp(url: string, apiKey: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${url}/v1/events?after=0&limit=1`, { headers: { Authorization: `Bearer ${apiKey}` } });
    const text = await res.text();
    await checkAnswer(url, { method: 'GET', path: '/v1/events?after=0&limit=1', status: res.status, contentType: res.headers.get('content-type'), text });
    if (res.status === 200) return;
    if (!(res.status === 503 && text.includes('"feed.wait"'))) throw new Error(`GET /v1/events: ${res.status} ${text}`);
    if (Date.now() > deadline) throw new Error(`the feed decoder did not catch up within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** The newest seq of the tenant's feed right now (0 when empty). */
export async function feedHead(url: string, apiKey: string): Promise<number> {
  const { lastSeq } = await drain(url, apiKey, 0, 1000);
  return lastSeq;
}

/** The id of the hold or booking an event is about (`data.hold.id` or `data.booking.id`), or undefined. */
export function subjectId(e: { data?: any; hold?: any; booking?: any }): string | undefined {
  const d = e.data ?? e;
  return d?.hold?.id ?? d?.booking?.id;
}

/** Events of one type, grouped by subject id: id → events. */
export function bySubject(events: FeedEvent[], type: string): Map<string, FeedEvent[]> {
  const out = new Map<string, FeedEvent[]>();
  for (const e of events) {
    if (e.type !== type) continue;
    const id = subjectId(e);
    if (id === undefined) continue;
    out.set(id, [...(out.get(id) ?? []), e]);
  }
  return out;
}

/**
 * Checks that `ids` and the events of `type` match one to one: each id has
 * exactly one event and each event of the type names one of the ids. `key`
 * picks what identifies an event (default: its hold or booking id). Returns
 * a list of human-readable mismatches (empty when they match).
 */
export function oneToOne(events: FeedEvent[], type: string, ids: Iterable<string>, key: (e: FeedEvent) => string | undefined = subjectId): string[] {
  const want = new Set(ids);
  const counts = new Map<string, number>();
  const problems: string[] = [];
  for (const e of events) {
    if (e.type !== type) continue;
    const k = key(e);
    if (k === undefined || !want.has(k)) {
      problems.push(`${type} seq ${e.seq} for ${k} matches no success`);
      continue;
    }
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  for (const id of want) {
    const n = counts.get(id) ?? 0;
    if (n !== 1) problems.push(`${type} for ${id}: ${n} event(s), expected 1`);
  }
  return problems;
}

/** True when every id has at least one event of `type` among `events`. */
export function haveAll(events: FeedEvent[], type: string, ids: Iterable<string>, key: (e: FeedEvent) => string | undefined = subjectId): boolean {
  const seen = new Set(events.filter((e) => e.type === type).map(key));
  for (const id of ids) if (!seen.has(id)) return false;
  return true;
}

/** The ids among `ids` that have no event of `type` yet (for failure messages). */
export function missing(events: FeedEvent[], type: string, ids: Iterable<string>, key: (e: FeedEvent) => string | undefined = subjectId): string[] {
  const seen = new Set(events.filter((e) => e.type === type).map(key));
  return [...ids].filter((id) => !seen.has(id));
}

/** What the live-client helpers need: a recorder of received events and an ack'd emit (helpers/process.ts `liveClient`). */
export interface LiveRecorder {
  received: { type: string; seq: number; payload: any }[];
  call(event: string, payload: unknown): Promise<any>;
}

/** How each id reached a live client: the seq it came with, live and/or through resync. */
export interface Delivery {
  live: Map<string, number>;
  resynced: Map<string, number>;
}

/**
 * Waits until an event of `type` about each of `ids` has reached a subscribed
 * live client, either live or through `resync {afterSeq}` (asked again on
 * every poll, as a client that noticed a gap would), and returns how each
 * came. Resync must answer with events (not a snapshot request), after
 * `afterSeq`, in seq order. Throws after `timeoutMs` naming the ids that
 * arrived neither way.
 */
export async function awaitLiveOrResync(client: LiveRecorder, type: string, ids: string[], afterSeq: number, timeoutMs = 10_000, who = 'live client'): Promise<Delivery> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = new Map<string, number>();
    for (const e of client.received) {
      const id = e.type === type ? subjectId(e.payload ?? {}) : undefined;
      if (id !== undefined && !live.has(id)) live.set(id, e.seq);
    }
    const ack = await client.call('resync', { afterSeq });
    if (!ack?.ok) throw new Error(`${who}: resync {afterSeq: ${afterSeq}} failed: ${JSON.stringify(ack)}`);
    if (ack.snapshotRequired) throw new Error(`${who}: resync {afterSeq: ${afterSeq}} asked for a snapshot; the missed events cannot be accounted for one by one`);
    const resynced = new Map<string, number>();
    let prev = afterSeq;
    for (const e of ack.events as { type: string; seq: number; hold?: any; booking?: any }[]) {
      if (!(e.seq > prev)) throw new Error(`${who}: resync events out of order or not after ${afterSeq}: seq ${e.seq} after ${prev}`);
      prev = e.seq;
      const id = e.type === type ? subjectId(e) : undefined;
      if (id !== undefined) resynced.set(id, e.seq);
    }
    const absent = ids.filter((id) => !live.has(id) && !resynced.has(id));
    if (absent.length === 0) return { live, resynced };
    if (Date.now() > deadline) {
      throw new Error(`${who}: after ${timeoutMs} ms, ${absent.length} of ${ids.length} ${type} event(s) arrived neither live nor through resync: ${absent.join(', ')}`);
    }
    await sleep(100);
  }
}

/**
 * The stored events' broken per-resource chains: each event must name, per
 * resource, the seq of the resource's previous event (0 for its first).
 * Returns the heads it ends with (resource → last seq) and what is broken.
 */
export function storedChains(rows: { seq: number; resource_ids: string[]; prev_seqs: (number | string)[] }[]): { heads: Map<string, number>; broken: string[] } {
  const heads = new Map<string, number>();
  const broken: string[] = [];
  for (const e of rows) {
    e.resource_ids.forEach((id, i) => {
      if (Number(e.prev_seqs[i]) !== (heads.get(id) ?? 0)) broken.push(`${id}@${e.seq} names ${e.prev_seqs[i]}, previous ${heads.get(id) ?? 0}`);
      heads.set(id, e.seq);
    });
  }
  return { heads, broken };
}
