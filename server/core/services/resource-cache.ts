/**
 * The resources a node read lately, for the fast paths of holds and direct
 * bookings (seats.ts's takeSeatsFast): reading the request's resources was one
 * of a hold's two statements, and its largest cost on the node after the
 * hold's own statement. A remembered row is only ever used to let a request
 * through: its version goes with the request into the fast path's statement
 * (migration 006), which writes nothing and answers 'fallback' unless every
 * resource is still live at that version; the general path then reads the
 * resources afresh. A request the remembered rows would refuse (404, a timing
 * rule, buffers) is decided again on rows read now. So a read after an
 * acknowledged change is never decided by a row older than the change, on any
 * node, whether or not the node has heard of it yet.
 *
 * The node also forgets a tenant's rows when it learns of a change to a
 * resource, schedule or block of it (its own commits, the other nodes'
 * messages, the feed), and a resource's rows when the fast path found them
 * stale, so stale rows cost a fallback at most once. Bounded by count
 * (least recently used rows go first; a forgotten row is read again). One
 * per node (node.ts), handed to the hold and booking services in CoreDeps.
 */
import type { Unit } from '../store';
import { notFound } from '../errors';
import { bufferPadMs, checkTiming, type Range } from '../rules';
import type { ResourceRow } from '../types';

/** Grid, notice and advance rules on every resource; false when one has buffers (the general path's case). */
function passes(resources: ResourceRow[], range: Range, now: number): boolean {
  for (const r of resources) checkTiming(r, range, now);
  return !resources.some((r) => bufferPadMs(r.rules) > 0);
}

/** How many resource rows a node remembers unless told otherwise. */
export const DEFAULT_RESOURCE_CACHE_ROWS = 10_000;

export class ResourceCache {
  /** `tenantId/resourceId` → the row, least recently used first (a row moves to the end when used or read again). */
  private readonly rows = new Map<string, ResourceRow>();
  /** The remembered resource ids of each tenant, for forgetTenant. */
  private readonly byTenant = new Map<string, Set<string>>();

  /** `maxRows`: the most rows remembered; past it the least recently used go. */
  constructor(private readonly maxRows = DEFAULT_RESOURCE_CACHE_ROWS) {
    if (!Number.isInteger(maxRows) || maxRows < 0) throw new Error(`ResourceCache maxRows must be a whole number >= 0, not ${maxRows}`);
  }

  /** How many rows are remembered. */
  get size(): number {
    return this.rows.size;
  }

  private drop(tenantId: string, id: string): void {
    if (!this.rows.delete(`${tenantId}/${id}`)) return;
    const mine = this.byTenant.get(tenantId)!;
    mine.delete(id);
    if (!mine.size) this.byTenant.delete(tenantId);
  }

  private remember(tenantId: string, found: ResourceRow[]): void {
    let mine = this.byTenant.get(tenantId);
    for (const r of found) {
      const key = `${tenantId}/${r.id}`;
      // Deleted first so that the row moves to the end (most recently used).
      this.rows.delete(key);
      this.rows.set(key, r);
      if (!mine) this.byTenant.set(tenantId, (mine = new Set()));
      mine.add(r.id);
    }
    for (const [, oldest] of this.rows) {
      if (this.rows.size <= this.maxRows) break;
      this.drop(oldest.tenantId, oldest.id);
    }
  }

  /** Forgets every remembered resource of the tenant (a resource, schedule or block of it changed). */
  forgetTenant(tenantId: string): void {
    const mine = this.byTenant.get(tenantId);
    if (!mine) return;
    for (const id of mine) this.rows.delete(`${tenantId}/${id}`);
    this.byTenant.delete(tenantId);
  }

  /** Forgets these resources of the tenant (the fast path found one of them changed). */
  forget(tenantId: string, ids: string[]): void {
    for (const id of ids) this.drop(tenantId, id);
  }

  /** The remembered live rows of all of `ids`, in request order (now the most recently used), or null when any is not remembered. */
  private remembered(tenantId: string, ids: string[]): ResourceRow[] | null {
    if (!this.byTenant.has(tenantId)) return null;
    const out: ResourceRow[] = [];
    for (const id of ids) {
      const r = this.rows.get(`${tenantId}/${id}`);
      if (!r || r.archivedAt !== null) return null;
      out.push(r);
    }
    for (const r of out) {
      const key = `${tenantId}/${r.id}`;
      this.rows.delete(key);
      this.rows.set(key, r);
    }
    return out;
  }

  /**
   * The request's live resources for a fast path, checked (404, grid, notice,
   * advance); null when a resource has buffers (the general path runs).
   * Remembered rows are used when they let the request through; otherwise the
   * rows are read now (and remembered) and decide. The caller hands their
   * versions to the fast path's statement, which checks them.
   */
  async fastPathResources(q: Unit, tenantId: string, ids: string[], range: Range, now: number): Promise<ResourceRow[] | null> {
    const known = this.remembered(tenantId, ids);
    if (known) {
      let ok = false;
      try {
        ok = passes(known, range, now);
      } catch {
        // Refused by what this node remembers: decided again below on rows read now.
      }
      if (ok) return known;
    }
    const found = await q.resources.byIds(tenantId, ids);
    this.remember(tenantId, found);
    const byId = new Map(found.filter((r) => r.archivedAt === null).map((r) => [r.id, r]));
    const resources = ids.map((id) => {
      const r = byId.get(id);
      if (!r) throw notFound(`resource ${id}`);
      return r;
    });
    return passes(resources, range, now) ? resources : null;
  }
}
