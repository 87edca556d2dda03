/**
 * The slots of hot resources, kept in the node's memory so availability
 * answers are computed without a Postgres round trip (PRODUCT.md P3,
 * computed). Each resource's entry holds its availability row and its slots
 * over whole UTC days around what was asked; an answer takes from it exactly
 * the slots the one-statement read (`slots.availability`) would have sent, so
 * both give the same answer byte for byte.
 *
 * Freshness is the answer cache's (availability-cache.ts), through the same
 * change marks: a commit marks what its events name on the committing node
 * before it answers, on the other nodes through the bus, and again when the
 * feed decoder publishes it; an entry is used only while nothing it was read
 * from is marked newer than its read. What marks cannot see (a node that died
 * before telling the others, a bus outage) is bounded by age: an entry older
 * than `refreshMs` is served while it is read again in the background, and
 * one older than `maxAgeMs` is not served at all.
 *
 * Memory is bounded in slot rows (LRU over resources); one resource's
 * entry is at most the answer bound of rows, since a read that would pass it
 * is not kept (the answer then reads exactly its own window, as without this).
 */
import { LRUCache } from 'lru-cache';
import { firstStartingFrom } from '../rules';
import type { AvailabilityRead, AvailabilityResource } from '../store';
import type { Clock, SlotRow } from '../types';
import type { ChangeMarks } from './availability-cache';

/** The one-statement read an entry is filled from (`slots.availability` of the read pool). */
export type SlotLoader = (resourceIds: string[], from: number, to: number, limit: number) => Promise<AvailabilityRead>;

export interface SlotMemoryOptions {
  /** Slot rows all entries may hold together (each entry counts its rows plus one). */
  maxRows?: number;
  /** An entry older than this is served while it is read again in the background. */
  refreshMs?: number;
  /** An entry older than this is read again before it is served. */
  maxAgeMs?: number;
}

/** Slot rows the node keeps by default: about 100 bytes each, so about 20 MB. */
export const DEFAULT_SLOT_MEMORY_ROWS = 200_000;

const DAY = 86_400_000;
/** The longest slot (slots.ts `LONGEST_SLOT`): the read takes no slot starting this far before its window. */
const LONGEST_SLOT_MS = DAY;

interface Entry {
  resource: AvailabilityResource;
  /** The window the read was asked for (what a refresh asks again). */
  asked: [from: number, to: number];
  /** Every slot overlapping [from, to) is in `slots`, sorted by start: the asked window padded as the read padded it. */
  from: number;
  to: number;
  slots: SlotRow[];
  /** The change-mark epoch and the clock when its read started. */
  epoch: number;
  at: number;
}

/** A resource's buffer padding: what the read adds on both sides of the asked window. */
const padOf = (r: AvailabilityResource) => (r.rules.bufferBeforeMinutes + r.rules.bufferAfterMinutes) * 60_000;
const dayFloor = (ms: number) => Math.floor(ms / DAY) * DAY;
const dayCeil = (ms: number) => Math.ceil(ms / DAY) * DAY;

/**
 * The slots of `slots` (sorted by start) that the one-statement read sends for
 * the padded window [from, to): overlapping it, starting less than the longest
 * slot before it.
 */
function slice(slots: SlotRow[], from: number, to: number): SlotRow[] {
  const out: SlotRow[] = [];
  for (let i = firstStartingFrom(slots, from - LONGEST_SLOT_MS + 1); i < slots.length; i++) {
    const s = slots[i]!;
    if (s.start >= to) break;
    if (s.end > from) out.push(s);
  }
  return out;
}

export class SlotMemory {
  private readonly entries: LRUCache<string, Entry>;
  /**
   * Whole-day reads that passed the answer bound, by tenant, resources and
   * days: the same question is then read over its own window at once, so a
   * refused query (or one just under the bound) costs one statement, not two.
   */
  private readonly tooLarge = new LRUCache<string, true>({ max: 1_000 });
  /** Background reads running, by entry key (one at a time per resource). */
  private readonly refreshing = new Set<string>();
  private readonly refreshMs: number;
  private readonly maxAgeMs: number;
  private hits = 0;
  private misses = 0;

  constructor(
    private readonly clock: Clock,
    private readonly marks: ChangeMarks,
    options: SlotMemoryOptions = {},
  ) {
    const { maxRows = DEFAULT_SLOT_MEMORY_ROWS, refreshMs = 250, maxAgeMs = 1_000 } = options;
    this.refreshMs = refreshMs;
    this.maxAgeMs = maxAgeMs;
    this.entries = new LRUCache<string, Entry>({ maxSize: maxRows, sizeCalculation: (e) => e.slots.length + 1 });
  }

  /**
   * What `load(resourceIds, from, to, limit)` would return, from memory where
   * it holds the resources' slots over the window, reading the others (in
   * one statement, over whole days around the window, kept for next time).
   */
  async read(tenantId: string, resourceIds: string[], from: number, to: number, limit: number, load: SlotLoader): Promise<AvailabilityRead> {
    const now = this.clock.now();
    const known = new Map<string, Entry>();
    for (const id of resourceIds) {
      const key = `${tenantId}/${id}`;
      const e = this.entries.get(key);
      if (!e) continue;
      if (now - e.at <= this.maxAgeMs && this.marks.unchangedSince(tenantId, [id], e.epoch)) known.set(id, e);
      else this.entries.delete(key); // changed or too old: free it now
    }
    this.hits += known.size;
    this.misses += resourceIds.length - known.size;
    // The read pads the window by the largest buffers of the named resources. Those not held, or held over too
    // short a window, are read in one statement over whole days; a resource read there may bring a larger buffer,
    // which the held ones may not cover: a second pass reads those too (with every buffer known, it is the last).
    let pad = 0;
    const absent = new Set<string>();
    for (let pass = 0; ; pass++) {
      for (const e of known.values()) pad = Math.max(pad, padOf(e.resource));
      const short = resourceIds.filter((id) => {
        const e = known.get(id);
        return e ? e.from > from - pad || e.to < to + pad : !absent.has(id);
      });
      if (short.length === 0) break;
      if (pass === 2) return load(resourceIds, from, to, limit); // not reached while buffers hold still; never loop
      const [dayFrom, dayTo] = [dayFloor(from - pad), dayCeil(to + pad)];
      const large = `${tenantId}|${short.join(',')}|${dayFrom}|${dayTo}|${limit}`;
      if (this.tooLarge.has(large)) return load(resourceIds, from, to, limit);
      const read = await this.fill(tenantId, short, dayFrom, dayTo, limit, load);
      if (read === null) {
        // More than an answer may read over whole days: this answer reads its own window only, and so will the next.
        this.tooLarge.set(large, true);
        return load(resourceIds, from, to, limit);
      }
      for (const id of short) {
        const e = read.get(id);
        if (e) known.set(id, e);
        else {
          known.delete(id);
          absent.add(id); // not found: the caller says so
        }
      }
    }
    const resources: AvailabilityResource[] = [];
    const slots = new Map<string, SlotRow[]>();
    let total = 0;
    for (const id of resourceIds) {
      const e = known.get(id);
      if (!e) continue; // not found: the caller says so
      resources.push(e.resource);
      const mine = slice(e.slots, from - pad, to + pad);
      total += mine.length;
      slots.set(id, mine);
      if (now - e.at > this.refreshMs) this.refresh(tenantId, id, e, limit, load);
    }
    return { resources, total: Math.min(total, limit + 1), slots: total > limit ? null : slots };
  }

  /** Entries, the slot rows they hold, and the resources answered from memory or read (for tests and metrics). */
  stats(): { entries: number; rows: number; hits: number; misses: number } {
    return { entries: this.entries.size, rows: this.entries.calculatedSize - this.entries.size, hits: this.hits, misses: this.misses };
  }

  /**
   * Reads the resources' slots over [from, to) and keeps each resource's
   * entry unless a change came while it read. Null when the read passed
   * `limit` (nothing is kept). Resources not found have no entry.
   */
  private async fill(tenantId: string, ids: string[], from: number, to: number, limit: number, load: SlotLoader): Promise<Map<string, Entry> | null> {
    const epoch = this.marks.now();
    const at = this.clock.now();
    const read = await load(ids, from, to, limit);
    if (read.slots === null) return null;
    // The read padded [from, to) by the largest buffers of the resources it found.
    let pad = 0;
    for (const r of read.resources) pad = Math.max(pad, padOf(r));
    const out = new Map<string, Entry>();
    for (const resource of read.resources) {
      const e: Entry = { resource, asked: [from, to], from: from - pad, to: to + pad, slots: read.slots.get(resource.id) ?? [], epoch, at };
      out.set(resource.id, e);
      if (this.marks.unchangedSince(tenantId, [resource.id], epoch)) this.entries.set(`${tenantId}/${resource.id}`, e);
    }
    return out;
  }

  /** Reads an entry's window again in the background; the entry keeps serving until the new one is in. */
  private refresh(tenantId: string, id: string, e: Entry, limit: number, load: SlotLoader): void {
    const key = `${tenantId}/${id}`;
    if (this.refreshing.has(key)) return;
    this.refreshing.add(key);
    this.fill(tenantId, [id], e.asked[0], e.asked[1], limit, load)
      .catch(() => {}) // the entry ages out; the next answer reads for itself
      .finally(() => this.refreshing.delete(key));
  }
}
