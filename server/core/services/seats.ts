/**
 * Seat accounting shared by holds, bookings and expiry. Every change to
 * seats_taken goes through `changeSeats`, which locks the slots it reads in one
 * global order, decides with the pure rules, and writes one batch of deltas.
 */
import type { FastResult, SlotWindow, Unit } from '../store';
import { holdDto } from '../dto';
import { DomainError, notFound } from '../errors';
import { checkTiming, evaluateSeats, lockWindow, type Conflict, type Range } from '../rules';
import type { ResourceCache } from './resource-cache';
import type { HoldRow, ResourceRow, SeatRequest, SlotRow } from '../types';

/** Seats to give back in the same transaction (a rescheduled booking's old range). */
export interface SeatRelease {
  resourceIds: string[];
  start: number;
  end: number;
  seats: number;
}

/** Loads live resources of the tenant, in request order; 404 when any is missing or archived. */
export async function liveResources(q: Unit, tenantId: string, ids: string[]): Promise<ResourceRow[]> {
  const rows = await q.resources.byIds(tenantId, ids);
  const byId = new Map(rows.filter((r) => r.archivedAt === null).map((r) => [r.id, r]));
  return ids.map((id) => {
    const r = byId.get(id);
    if (!r) throw notFound(`resource ${id}`);
    return r;
  });
}

/** Checks grid, notice and advance rules of a request on every resource. */
export function checkRequestTiming(resources: ResourceRow[], range: Range, now: number): void {
  for (const r of resources) checkTiming(r, range, now);
}

const windowsFor = (resourceIds: string[], range: Range): SlotWindow[] => resourceIds.map((resourceId) => ({ resourceId, ...range }));

/** Adds `delta` to every locked slot of the resources inside the range. */
function addOver(deltas: Map<number, number>, slots: SlotRow[], resourceIds: string[], range: Range, delta: number): void {
  const ids = new Set(resourceIds);
  for (const s of slots) {
    if (ids.has(s.resourceId) && s.start >= range.start && s.end <= range.end) deltas.set(s.id, (deltas.get(s.id) ?? 0) + delta);
  }
}

/** Marks locked, due holds expired and records one event each; seats are returned through `deltas`. */
async function expireInto(q: Unit, due: HoldRow[], slots: SlotRow[], deltas: Map<number, number>): Promise<void> {
  for (const h of due) {
    addOver(deltas, slots, h.resourceIds, h, -h.seats);
    await q.holds.setStatus(h.id, 'expired');
  }
}

/** Writes the hold.expired events of `due`, once their seats are back (each event carries the seats it left). */
async function announceExpired(q: Unit, due: HoldRow[]): Promise<void> {
  for (const h of due) await q.events.append(h.tenantId, 'hold.expired', h.resourceIds, { hold: holdDto({ ...h, status: 'expired' }) });
}

/**
 * Takes `req.seats` on every requested resource for the range, optionally
 * giving back `release` first, inside the caller's transaction. Holds on these
 * slots that are past their expiry are reclaimed here rather than waiting for
 * the sweeper. Throws 409 slot-unavailable with the conflicts.
 */
export async function changeSeats(q: Unit, tenantId: string, resources: ResourceRow[], req: SeatRequest, release?: SeatRelease): Promise<void> {
  const windows = resources.map((r) => ({ resourceId: r.id, ...lockWindow(req, [r]) }));
  if (release) windows.push(...windowsFor(release.resourceIds, release));
  const span = { start: Math.min(...windows.map((w) => w.start)), end: Math.max(...windows.map((w) => w.end)) };
  const touched = [...new Set(windows.map((w) => w.resourceId))];

  // Expired holds are rare (the sweeper keeps up), so probe without locks first.
  let due: HoldRow[] = [];
  if (await q.holds.anyDueNear(touched, span.start, span.end)) {
    due = await q.holds.lockDue(100, { tenantId, resourceIds: touched, ...span });
    for (const h of due) windows.push(...windowsFor(h.resourceIds, h));
  }

  const slots = await q.slots.lock(tenantId, windows);
  const deltas = new Map<number, number>();
  await expireInto(q, due, slots, deltas);
  if (release) addOver(deltas, slots, release.resourceIds, release, -release.seats);
  const freed = new Map([...deltas].map(([id, d]) => [id, -d]));

  const conflicts = [];
  for (const r of resources) {
    const { targets, conflicts: c } = evaluateSeats(r, slots.filter((s) => s.resourceId === r.id), req, req.seats, freed);
    conflicts.push(...c);
    for (const s of targets) deltas.set(s.id, (deltas.get(s.id) ?? 0) + req.seats);
  }
  if (conflicts.length > 0) throw slotUnavailable(conflicts, req.seats);
  await q.slots.addSeats(deltas);
  await announceExpired(q, due);
}

/** The 409 for seats that do not fit. */
function slotUnavailable(conflicts: Conflict[], seats: number): DomainError {
  return new DomainError('slot-unavailable', `${conflicts.length} slot(s) cannot take ${seats} more seat(s)`, { conflicts });
}

/**
 * The fast path of a plain request (see migration 003): reads and checks the
 * resources as the general path does (404, 422), then, when none has buffers,
 * lets `write` take the seats and record the change in one statement. A
 * conflict throws the general path's 409, with the conflicts in its order.
 * Returns null when the general path must run instead (buffers, an expired
 * hold to reclaim, slots that do not tile the range); nothing is written then.
 */
export async function takeSeatsFast<T>(q: Unit, cache: ResourceCache, tenantId: string, req: SeatRequest, now: number,
  write: (versions: number[]) => Promise<FastResult<T>>): Promise<T | null> {
  // Remembered rows when they let the request through, their versions checked by the write (resource-cache.ts).
  const resources = await cache.fastPathResources(q, tenantId, req.resourceIds, req, now);
  if (!resources) return null;
  // In the order of the sorted ids, as the statement takes them.
  const versions = [...resources].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((r) => r.version);
  const result = await write(versions);
  if (result.status === 'ok') return result.row;
  if (result.status === 'fallback') {
    cache.forget(tenantId, req.resourceIds);
    return null;
  }
  // In the general path's order (request order, then start) and key order.
  const order = (c: Conflict) => req.resourceIds.indexOf(c.resourceId);
  const conflicts = result.conflicts.map(({ resourceId, start, end, remaining, reason }) => ({ resourceId, start, end, remaining, reason }));
  throw slotUnavailable(conflicts.sort((a, b) => order(a) - order(b) || a.start.localeCompare(b.start)), req.seats);
}

/** Gives seats back (release, cancel), locking the slots in the global order. */
export async function returnSeats(q: Unit, tenantId: string, release: SeatRelease): Promise<void> {
  const slots = await q.slots.lock(tenantId, windowsFor(release.resourceIds, release));
  const deltas = new Map<number, number>();
  addOver(deltas, slots, release.resourceIds, release, -release.seats);
  await q.slots.addSeats(deltas);
}

/** Expires up to `limit` due holds cluster-wide; safe to run on every node at once. Returns how many. */
export async function expireDueHolds(q: Unit, limit: number): Promise<HoldRow[]> {
  const due = await q.holds.lockDue(limit);
  if (due.length === 0) return [];
  const byTenant = new Map<string, HoldRow[]>();
  for (const h of due) byTenant.set(h.tenantId, [...(byTenant.get(h.tenantId) ?? []), h]);
  // Tenants in a fixed order, so two sweepers lock slots in the same order.
  for (const [tenantId, holds] of [...byTenant].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const slots = await q.slots.lock(tenantId, holds.flatMap((h) => windowsFor(h.resourceIds, h)));
    const deltas = new Map<number, number>();
    await expireInto(q, holds, slots, deltas);
    await q.slots.addSeats(deltas);
    await announceExpired(q, holds);
  }
  return due;
}
