/** Resources (the tree), their schedules and blocks. */
import type { Rules } from '../../../shared/schemas';
import type { ResourceRow } from '../../core/types';
import { named, type Queryable } from '../pool';
import type { BlockRow, NewResource, RowLock, ScheduleRow } from '../../core/store';

const COLUMNS = `id, tenant_id, parent_id, name, kind, capacity, timezone, slot_minutes, min_notice_minutes, max_advance_days,
  buffer_before_minutes, buffer_after_minutes, metadata, version, archived_at, created_at, updated_at, price`;

/** Maps a resources row to the domain shape. */
function toResource(r: Record<string, any>): ResourceRow {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    parentId: r.parent_id,
    name: r.name,
    kind: r.kind,
    capacity: r.capacity,
    timezone: r.timezone,
    slotMinutes: r.slot_minutes,
    rules: {
      minNoticeMinutes: r.min_notice_minutes,
      maxAdvanceDays: r.max_advance_days,
      bufferBeforeMinutes: r.buffer_before_minutes,
      bufferAfterMinutes: r.buffer_after_minutes,
    },
    metadata: r.metadata,
    version: r.version,
    archivedAt: r.archived_at?.getTime() ?? null,
    price: r.price ?? null,
    createdAt: r.created_at.getTime(),
    updatedAt: r.updated_at.getTime(),
  };
}

const toSchedule = (r: Record<string, any>): ScheduleRow => ({
  resourceId: r.resource_id,
  generatedTo: r.generated_to.getTime(),
  timezone: r.timezone,
  weekly: r.weekly,
  overrides: r.overrides,
  version: r.version,
});

const toBlock = (r: Record<string, any>): BlockRow => ({
  id: r.id,
  resourceId: r.resource_id,
  start: r.start_at.getTime(),
  end: r.end_at.getTime(),
  reason: r.reason,
  createdAt: r.created_at.getTime(),
});

const LOCK_CLAUSE = { update: 'FOR UPDATE', 'no-key-update': 'FOR NO KEY UPDATE' } as const;

export const resourceRepository = {
  /** Inserts a resource. */
  async insert(q: Queryable, tenantId: string, r: NewResource): Promise<ResourceRow> {
    const { rows } = await q.query(
      `INSERT INTO resources (tenant_id, parent_id, name, kind, capacity, timezone, slot_minutes, min_notice_minutes,
         max_advance_days, buffer_before_minutes, buffer_after_minutes, metadata, price)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) RETURNING ${COLUMNS}`,
      [tenantId, r.parentId, r.name, r.kind, r.capacity, r.timezone, r.slotMinutes, r.rules.minNoticeMinutes,
        r.rules.maxAdvanceDays, r.rules.bufferBeforeMinutes, r.rules.bufferAfterMinutes, r.metadata, r.price ? JSON.stringify(r.price) : null],
    );
    return toResource(rows[0]);
  },

  /** Writes every field of a resource and bumps its version. */
  async update(q: Queryable, r: ResourceRow & { archivedAt: number | null }): Promise<ResourceRow> {
    const { rows } = await q.query(
      `UPDATE resources SET parent_id=$3, name=$4, kind=$5, capacity=$6, timezone=$7, slot_minutes=$8, min_notice_minutes=$9,
         max_advance_days=$10, buffer_before_minutes=$11, buffer_after_minutes=$12, metadata=$13,
         archived_at=$14, price=$15, version = version + 1, updated_at = now()
       WHERE tenant_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [r.tenantId, r.id, r.parentId, r.name, r.kind, r.capacity, r.timezone, r.slotMinutes, r.rules.minNoticeMinutes,
        r.rules.maxAdvanceDays, r.rules.bufferBeforeMinutes, r.rules.bufferAfterMinutes, r.metadata,
        r.archivedAt === null ? null : new Date(r.archivedAt), r.price ? JSON.stringify(r.price) : null],
    );
    return toResource(rows[0]);
  },

  /**
   * Reads resources of a tenant by id (any order); `lock` takes row locks sorted by id: 'update' (FOR UPDATE),
   * or 'no-key-update' (FOR NO KEY UPDATE), which serializes changes of the resource without blocking the
   * KEY SHARE lock that a hold's or booking's foreign key takes on it after locking its slots (FOR UPDATE there
   * deadlocked a capacity cut, a block or a schedule change with every hold on the slots it had not locked yet).
   */
  async byIds(q: Queryable, tenantId: string, ids: string[], lock: RowLock = false): Promise<ResourceRow[]> {
    const clause = lock ? LOCK_CLAUSE[lock] : '';
    const { rows } = await q.query(named(lock ? `resources.byIds.${lock}` : 'resources.byIds',
      `SELECT ${COLUMNS} FROM resources WHERE tenant_id = $1 AND id = ANY($2::uuid[]) ORDER BY id ${clause}`,
      [tenantId, ids],
    ));
    return rows.map(toResource);
  },

  /** One page of a tenant's resources in creation order. */
  async page(q: Queryable, tenantId: string, after: { createdAt: number; id: string } | null, limit: number, includeArchived: boolean): Promise<ResourceRow[]> {
    const { rows } = await q.query(
      `SELECT ${COLUMNS} FROM resources WHERE tenant_id = $1
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
         AND ($5 OR archived_at IS NULL)
       ORDER BY created_at, id LIMIT $4`,
      [tenantId, after ? new Date(after.createdAt) : null, after?.id ?? null, limit, includeArchived],
    );
    return rows.map(toResource);
  },

  /** Ids of the resource's ancestors, nearest first. */
  async ancestorIds(q: Queryable, tenantId: string, id: string): Promise<string[]> {
    const { rows } = await q.query(
      `WITH RECURSIVE up(id, parent_id, depth) AS (
         SELECT id, parent_id, 0 FROM resources WHERE tenant_id = $1 AND id = $2
         UNION ALL
         SELECT r.id, r.parent_id, up.depth + 1 FROM resources r JOIN up ON r.id = up.parent_id WHERE up.depth < 100
       ) SELECT id FROM up WHERE depth > 0 ORDER BY depth`,
      [tenantId, id],
    );
    return rows.map((r) => r.id);
  },

  /** The resource and all its descendants, parents before children. */
  async subtree(q: Queryable, tenantId: string, id: string): Promise<ResourceRow[]> {
    const { rows } = await q.query(
      `WITH RECURSIVE down(id, depth) AS (
         SELECT id, 0 FROM resources WHERE tenant_id = $1 AND id = $2
         UNION ALL
         SELECT r.id, down.depth + 1 FROM resources r JOIN down ON r.parent_id = down.id WHERE down.depth < 100
       ) SELECT ${COLUMNS.split(',').map((c) => `r.${c.trim()}`).join(', ')} FROM down JOIN resources r USING (id) ORDER BY down.depth, r.id`,
      [tenantId, id],
    );
    return rows.map(toResource);
  },

  /** True when the resource has children that are not archived. */
  async hasLiveChildren(q: Queryable, id: string): Promise<boolean> {
    const { rows } = await q.query('SELECT 1 FROM resources WHERE parent_id = $1 AND archived_at IS NULL LIMIT 1', [id]);
    return rows.length > 0;
  },
};

export const scheduleRepository = {
  /** Schedules of the given resources, keyed by resource id. */
  async forResources(q: Queryable, ids: string[]): Promise<Map<string, ScheduleRow>> {
    const { rows } = await q.query('SELECT * FROM schedules WHERE resource_id = ANY($1::uuid[])', [ids]);
    return new Map(rows.map((r) => [r.resource_id, toSchedule(r)]));
  },

  /** Locks up to `limit` schedules whose slots end before `until`, skipping ones another node is extending. */
  async lockLagging(q: Queryable, until: number, limit: number): Promise<{ tenantId: string; resourceId: string; generatedTo: number }[]> {
    const { rows } = await q.query(
      'SELECT tenant_id, resource_id, generated_to FROM schedules WHERE generated_to < $1 ORDER BY resource_id LIMIT $2 FOR UPDATE SKIP LOCKED',
      [new Date(until), limit],
    );
    return rows.map((r) => ({ tenantId: r.tenant_id, resourceId: r.resource_id, generatedTo: r.generated_to.getTime() }));
  },

  /** Records how far slots of these resources are generated. */
  async setGeneratedTo(q: Queryable, ids: string[], to: number): Promise<void> {
    await q.query('UPDATE schedules SET generated_to = GREATEST(generated_to, $2) WHERE resource_id = ANY($1::uuid[])', [ids, new Date(to)]);
  },

  /** Creates or replaces a resource's schedule. */
  async upsert(q: Queryable, tenantId: string, s: Omit<ScheduleRow, 'version'>): Promise<ScheduleRow> {
    const { rows } = await q.query(
      `INSERT INTO schedules (resource_id, tenant_id, timezone, weekly, overrides, generated_to) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (resource_id) DO UPDATE SET timezone = EXCLUDED.timezone, weekly = EXCLUDED.weekly,
         overrides = EXCLUDED.overrides, generated_to = GREATEST(schedules.generated_to, EXCLUDED.generated_to),
         version = schedules.version + 1, updated_at = now()
       RETURNING *`,
      [s.resourceId, tenantId, s.timezone, JSON.stringify(s.weekly), JSON.stringify(s.overrides), new Date(s.generatedTo)],
    );
    return toSchedule(rows[0]);
  },
};

export const blockRepository = {
  /** Inserts a block. */
  async insert(q: Queryable, tenantId: string, resourceId: string, start: number, end: number, reason: string | null): Promise<BlockRow> {
    const { rows } = await q.query(
      'INSERT INTO blocks (tenant_id, resource_id, start_at, end_at, reason) VALUES ($1,$2,$3,$4,$5) RETURNING *',
      [tenantId, resourceId, new Date(start), new Date(end), reason],
    );
    return toBlock(rows[0]);
  },

  /** Deletes a block, returning it. */
  async delete(q: Queryable, tenantId: string, id: string): Promise<BlockRow | null> {
    const { rows } = await q.query('DELETE FROM blocks WHERE tenant_id = $1 AND id = $2 RETURNING *', [tenantId, id]);
    return rows[0] ? toBlock(rows[0]) : null;
  },

  /** Blocks on any of the resources that overlap [from, to). */
  async overlapping(q: Queryable, resourceIds: string[], from: number, to: number): Promise<BlockRow[]> {
    const { rows } = await q.query(
      'SELECT * FROM blocks WHERE resource_id = ANY($1::uuid[]) AND start_at < $3 AND end_at > $2 ORDER BY start_at',
      [resourceIds, new Date(from), new Date(to)],
    );
    return rows.map(toBlock);
  },
};
