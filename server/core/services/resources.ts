/** Resources (the tree), schedules, blocks and the slot horizon. */
import type { RowLock, Unit } from '../store';
import type { Resource, ResourceCreate, ResourcePatch, ScheduleInput } from '../../../shared/schemas';
import { resourceDto } from '../dto';
import { DomainError, notFound } from '../errors';
import type { CoreDeps } from '../ports';
import type { ResourceRow } from '../types';
import { decodeCursor, encodeCursor } from './cursor';
import { horizonEnd, regenerateSubtree } from './slotgen';

const iso = (ms: number) => new Date(ms).toISOString();

/** Builds the resource service over the core's ports. */
export function resourceService({ store, clock, config }: CoreDeps) {

  async function load(q: Unit, tenantId: string, id: string, lock: RowLock = false): Promise<ResourceRow> {
    const [r] = await q.resources.byIds(tenantId, [id], lock);
    if (!r || r.archivedAt !== null) throw notFound(`resource ${id}`);
    return r;
  }

  /** The regeneration window: from now to the horizon. */
  const window = () => ({ start: clock.now(), end: horizonEnd(clock.now(), config.slotHorizonDays) });

  return {
    /** Creates a resource under an optional parent of the same tenant. */
    async create(tenantId: string, cmd: ResourceCreate): Promise<Resource> {
      const r = await store.tx(async (q) => {
        if (cmd.parentId) await load(q, tenantId, cmd.parentId);
        const row = await q.resources.insert(tenantId, { ...cmd, parentId: cmd.parentId ?? null });
        await q.events.append(tenantId, 'resource.created', [row.id], { resource: resourceDto(row) });
        return row;
      });
      return resourceDto(r);
    },

    /** Reads a live resource. */
    async get(tenantId: string, id: string): Promise<Resource> {
      return resourceDto(await load(store.primary, tenantId, id));
    },

    /** Lists resources in creation order with a cursor. */
    async list(tenantId: string, cursor: string | undefined, limit: number, includeArchived: boolean) {
      const rows = await store.primary.resources.page(tenantId, decodeCursor(cursor), limit + 1, includeArchived);
      const items = rows.slice(0, limit);
      const last = items[items.length - 1];
      return { items: items.map(resourceDto), nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
    },

    /** Updates a resource; changes that move slots regenerate them (409 if seats would be lost). */
    async update(tenantId: string, id: string, patch: ResourcePatch): Promise<Resource> {
      const r = await store.tx(async (q) => {
        const cur = await load(q, tenantId, id, 'no-key-update');
        if (patch.parentId) {
          if (patch.parentId === id) throw new DomainError('resource-cycle', 'a resource cannot be its own parent');
          await load(q, tenantId, patch.parentId);
          const above = await q.resources.ancestorIds(tenantId, patch.parentId);
          if (above.includes(id)) throw new DomainError('resource-cycle', `resource ${patch.parentId} is a descendant of ${id}`);
        }
        const next: ResourceRow = {
          ...cur,
          name: patch.name ?? cur.name,
          kind: patch.kind ?? cur.kind,
          parentId: patch.parentId === undefined ? cur.parentId : patch.parentId,
          capacity: patch.capacity ?? cur.capacity,
          timezone: patch.timezone ?? cur.timezone,
          slotMinutes: patch.slotMinutes ?? cur.slotMinutes,
          rules: { ...cur.rules, ...patch.rules },
          metadata: patch.metadata ?? cur.metadata,
          price: patch.price === undefined ? (cur.price ?? null) : patch.price, // payments
        };
        const row = await q.resources.update(next);
        const slotsMove = next.capacity !== cur.capacity || next.timezone !== cur.timezone || next.slotMinutes !== cur.slotMinutes || next.parentId !== cur.parentId;
        if (slotsMove) {
          const code = next.capacity < cur.capacity ? 'capacity-conflict' : 'schedule-conflict';
          await regenerateSubtree(q, tenantId, id, window(), code);
        }
        await q.events.append(tenantId, 'resource.updated', [id], { resource: resourceDto(row) });
        return row;
      });
      return resourceDto(r);
    },

    /** Archives a resource with no live children, holds or bookings ahead; its future slots go. */
    async archive(tenantId: string, id: string): Promise<Resource> {
      const r = await store.tx(async (q) => {
        // FOR UPDATE, unlike the other changes: it waits for holds whose foreign key already holds KEY SHARE on
        // the row, so the live count below sees them, and holds after it find the resource archived. A hold that
        // locked its slots but has not yet inserted its resources can still deadlock with it (Postgres breaks it).
        const cur = await load(q, tenantId, id, 'update');
        const now = clock.now();
        if (await q.resources.hasLiveChildren(id)) throw new DomainError('resource-in-use', 'archive its children first');
        const live = (await q.holds.liveOn(id, now)) + (await q.bookings.liveOn(id, now));
        if (live > 0) throw new DomainError('resource-in-use', `${live} live hold(s) or booking(s) ahead use this resource`);
        const row = await q.resources.update({ ...cur, archivedAt: now });
        const future = await q.slots.lock(tenantId, [{ resourceId: id, start: now, end: now + 3650 * 86_400_000 }]);
        await q.slots.delete(future.filter((s) => s.start >= now).map((s) => s.id));
        await q.events.append(tenantId, 'resource.archived', [id], { resource: resourceDto(row) });
        return row;
      });
      return resourceDto(r);
    },

    /** Replaces the schedule and regenerates slots of the resource and its descendants up to the horizon. */
    async putSchedule(tenantId: string, id: string, input: ScheduleInput) {
      return store.tx(async (q) => {
        const r = await load(q, tenantId, id, 'no-key-update');
        const win = window();
        const schedule = await q.schedules.upsert(tenantId, {
          resourceId: id,
          timezone: input.timezone ?? r.timezone,
          weekly: input.weekly,
          overrides: input.overrides,
          generatedTo: win.end,
        });
        await regenerateSubtree(q, tenantId, id, win, 'schedule-conflict');
        const subtreeIds = (await q.resources.subtree(tenantId, id)).map((x) => x.id);
        const slots = await q.slots.countOpen(subtreeIds, win.start);
        const { generatedTo, resourceId: _, ...shown } = schedule;
        await q.events.append(tenantId, 'schedule.updated', [id], { resourceId: id, schedule: shown });
        return { schedule: shown, horizon: { from: iso(win.start), to: iso(generatedTo) }, slots };
      });
    },

    /** Reads the schedule of a resource. */
    async getSchedule(tenantId: string, id: string) {
      await load(store.primary, tenantId, id);
      const s = (await store.primary.schedules.forResources([id])).get(id);
      if (!s) throw notFound(`schedule of resource ${id}`);
      const { generatedTo, resourceId: _, ...shown } = s;
      return { schedule: shown, horizon: { from: iso(clock.now()), to: iso(generatedTo) } };
    },

    /** Closes the resource and its descendants over a range; 409 when seats are taken there. */
    async addBlock(tenantId: string, id: string, start: number, end: number, reason: string | null) {
      const b = await store.tx(async (q) => {
        await load(q, tenantId, id, 'no-key-update');
        const block = await q.blocks.insert(tenantId, id, start, end, reason);
        await regenerateSubtree(q, tenantId, id, blockWindow(start, end, clock.now()), 'block-conflict');
        await q.events.append(tenantId, 'block.created', [id], { block: blockDto(block) });
        return block;
      });
      return blockDto(b);
    },

    /** Lifts a block; slots it closed reopen unless another block still covers them. */
    async removeBlock(tenantId: string, blockId: string) {
      const b = await store.tx(async (q) => {
        const block = await q.blocks.delete(tenantId, blockId);
        if (!block) throw notFound(`block ${blockId}`);
        await regenerateSubtree(q, tenantId, block.resourceId, blockWindow(block.start, block.end, clock.now()), 'block-conflict');
        await q.events.append(tenantId, 'block.deleted', [block.resourceId], { block: blockDto(block) });
        return block;
      });
      return blockDto(b);
    },

    /**
     * Extends every lagging schedule to the horizon. Any node may run it at
     * any time: SKIP LOCKED hands each schedule to one node, and a schedule
     * already extended is not picked again.
     */
    async extendHorizon(batch = 50): Promise<number> {
      const target = horizonEnd(clock.now(), config.slotHorizonDays);
      let extended = 0;
      for (;;) {
        const n = await store.tx(async (q) => {
          const lagging = await q.schedules.lockLagging(target, batch);
          for (const s of lagging) {
            await q.schedules.setGeneratedTo([s.resourceId], target);
            await regenerateOne(q, s.tenantId, s.resourceId, { start: Math.max(s.generatedTo, clock.now()), end: target });
          }
          return lagging.length;
        });
        extended += n;
        if (n < batch) return extended;
      }
    },
  };
}

/** Regenerates one resource's own slots (not its subtree: each descendant's schedule is extended on its own). */
async function regenerateOne(q: Unit, tenantId: string, id: string, win: { start: number; end: number }) {
  if (win.end > win.start) await regenerateSubtree(q, tenantId, id, win, 'schedule-conflict', false);
}

/** Slots a block can touch: those overlapping it, including one that starts before it (a block need not sit on the grid). */
function blockWindow(start: number, end: number, now: number) {
  return { start: Math.max(start - 86_400_000, now), end };
}

function blockDto(b: { id: string; resourceId: string; start: number; end: number; reason: string | null; createdAt: number }) {
  return { id: b.id, resourceId: b.resourceId, start: iso(b.start), end: iso(b.end), reason: b.reason, createdAt: iso(b.createdAt) };
}

export type ResourceService = ReturnType<typeof resourceService>;
