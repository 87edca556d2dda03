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
 * stale, so stale rows cost a fallback at most once. Bounded by count. One
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

export class ResourceCache {
  private readonly byTenant = new Map<string, Map<string, ResourceRow>>();
  private rows = 0;

  constructor(private readonly maxRows = 10_000) {}

  private remember(tenantId: string, found: ResourceRow[]): void {
    if (this.rows + found.length > this.maxRows) {
      this.byTenant.clear();
      this.rows = 0;
    }
    let mine = this.byTenant.get(tenantId);
    if (!mine) this.byTenant.set(tenantId, (mine = new Map()));
    for (const r of found) {
      if (!mine.has(r.id)) this.rows++;
      mine.set(r.id, r);
    }
  }

  /** Forgets every remembered resource of the tenant (a resource, schedule or block of it changed). */
  forgetTenant(tenantId: string): void {
    const mine = this.byTenant.get(tenantId);
    if (!mine) return;
    this.rows -= mine.size;
    this.byTenant.delete(tenantId);
  }

  /** Forgets these resources of the tenant (the fast path found one of them changed). */
  forget(tenantId: string, ids: string[]): void {
    const mine = this.byTenant.get(tenantId);
    if (!mine) return;
    for (const id of ids) if (mine.delete(id)) this.rows--;
  }

  /** The remembered live rows of all of `ids`, in request order, or null when any is not remembered. */
  private remembered(tenantId: string, ids: string[]): ResourceRow[] | null {
    const mine = this.byTenant.get(tenantId);
    if (!mine) return null;
    const out: ResourceRow[] = [];
    for (const id of ids) {
      const r = mine.get(id);
      if (!r || r.archivedAt !== null) return null;
      out.push(r);
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
