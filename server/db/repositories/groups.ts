/** Group bookings and their members. */
import type { Queryable } from '../pool';
import type { GroupRole, GroupRow, MemberRow } from '../../core/store';
import type { GroupStatus } from '../../core/ports';

const toGroup = (r: Record<string, any>): GroupRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  title: r.title,
  createdBy: r.created_by,
  status: r.status,
  holdId: r.hold_id,
  bookingId: r.booking_id,
  createdAt: r.created_at.getTime(),
  updatedAt: r.updated_at.getTime(),
});

export const groupRepository = {
  /** Inserts a group booking with its first members. */
  async insert(q: Queryable, tenantId: string, title: string, createdBy: string | null, members: { userId: string; role: GroupRole }[]): Promise<GroupRow> {
    const { rows } = await q.query('INSERT INTO group_bookings (tenant_id, title, created_by) VALUES ($1, $2, $3) RETURNING *', [tenantId, title, createdBy]);
    const g = toGroup(rows[0]);
    if (members.length) {
      await q.query(
        `INSERT INTO group_booking_members (group_booking_id, user_id, role)
         SELECT $1, * FROM unnest($2::text[], $3::text[]) ON CONFLICT (group_booking_id, user_id) DO UPDATE SET role = EXCLUDED.role`,
        [g.id, members.map((m) => m.userId), members.map((m) => m.role)],
      );
    }
    return g;
  },

  /** Reads a group booking of a tenant; `lock` takes its row lock. */
  async get(q: Queryable, tenantId: string, id: string, lock = false): Promise<GroupRow | null> {
    const { rows } = await q.query(`SELECT * FROM group_bookings WHERE tenant_id = $1 AND id = $2 ${lock ? 'FOR UPDATE' : ''}`, [tenantId, id]);
    return rows[0] ? toGroup(rows[0]) : null;
  },

  /** The group booking holding this hold, if any. */
  async byHold(q: Queryable, holdId: string): Promise<GroupRow | null> {
    const { rows } = await q.query('SELECT * FROM group_bookings WHERE hold_id = $1', [holdId]);
    return rows[0] ? toGroup(rows[0]) : null;
  },

  /** Writes status, hold and booking of a locked group booking. */
  async setState(q: Queryable, id: string, s: { status: GroupStatus; holdId: string | null; bookingId: string | null }): Promise<void> {
    await q.query('UPDATE group_bookings SET status = $2, hold_id = $3, booking_id = $4, updated_at = now() WHERE id = $1', [id, s.status, s.holdId, s.bookingId]);
  },

  /** Marks held groups whose hold is among `holdIds` expired; returns their ids (each once, cluster-wide). */
  async expireByHolds(q: Queryable, holdIds: string[]): Promise<string[]> {
    const { rows } = await q.query(
      "UPDATE group_bookings SET status = 'expired', updated_at = now() WHERE hold_id = ANY($1::uuid[]) AND status = 'held' RETURNING id",
      [holdIds],
    );
    return rows.map((r) => r.id);
  },

  /** The members of a group booking. */
  async members(q: Queryable, id: string): Promise<MemberRow[]> {
    const { rows } = await q.query('SELECT user_id, role, added_at FROM group_booking_members WHERE group_booking_id = $1 ORDER BY added_at, user_id', [id]);
    return rows.map((r) => ({ userId: r.user_id, role: r.role, addedAt: r.added_at.getTime() }));
  },

  /** A user's role in a group booking of the tenant, or null. */
  async roleOf(q: Queryable, tenantId: string, id: string, userId: string): Promise<GroupRole | null> {
    const { rows } = await q.query(
      `SELECT m.role FROM group_booking_members m JOIN group_bookings g ON g.id = m.group_booking_id
       WHERE g.tenant_id = $1 AND g.id = $2 AND m.user_id = $3`,
      [tenantId, id, userId],
    );
    return rows[0]?.role ?? null;
  },

  /** Adds or re-roles a member. */
  async upsertMember(q: Queryable, id: string, userId: string, role: GroupRole): Promise<void> {
    await q.query(
      `INSERT INTO group_booking_members (group_booking_id, user_id, role) VALUES ($1, $2, $3)
       ON CONFLICT (group_booking_id, user_id) DO UPDATE SET role = EXCLUDED.role`,
      [id, userId, role],
    );
  },

  /** Removes a member; true when one was removed. */
  async removeMember(q: Queryable, id: string, userId: string): Promise<boolean> {
    const { rowCount } = await q.query('DELETE FROM group_booking_members WHERE group_booking_id = $1 AND user_id = $2', [id, userId]);
    return (rowCount ?? 0) > 0;
  },
};
