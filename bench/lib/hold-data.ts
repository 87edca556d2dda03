/** What P1, P2 and P4 share: resources open around the clock, a hold's event body, the server's captured hold. */
import { must, type Node } from './cluster';
import { messageParts } from '../../server/db/repositories/events';
import { readTrace, type Ctx } from './context';

const EVERY_DAY = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** A capacity-`capacity` resource open around the clock on a `slotMinutes` grid. */
export async function openResource(ctx: Ctx, name: string, capacity: number, slotMinutes: number): Promise<string> {
  const r = await must(ctx.key('POST', '/v1/resources', { name, capacity, timezone: 'UTC', slotMinutes }), 201, 'resource');
  await must(ctx.key('PUT', `/v1/resources/${r.id}/schedule`, { weekly: [{ days: EVERY_DAY, start: '00:00', end: '24:00' }] }), 200, 'schedule');
  return r.id;
}

/**
 * The logical message a hold writes, at its real size (about 400 bytes), cut
 * where the database fills in the id, times and slots (server/db/repositories/events.ts's
 * messageParts), as a Postgres text[] literal for pgbench.
 */
export function holdEventData(ctx: Ctx, resourceId: string): string {
  const t = new Date(ctx.baseMs).toISOString();
  const parts = messageParts((mark) => ({
    tenantId: ctx.tenantId, type: 'hold.created', resourceIds: [resourceId],
    data: { hold: { id: mark('id'), status: 'held', resourceIds: [resourceId], start: t, end: t, seats: 1, expiresAt: mark('expiresAt'), bookingId: null, ownerId: ctx.userId, createdAt: mark('createdAt') } },
  }), ['id', 'expiresAt', 'createdAt']);
  return `{${parts.map((p) => `"${p.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

/** pgbench variables every hold script takes. */
export function commonVars(ctx: Ctx, resourceId: string, passPpm: number) {
  const t = new Date(ctx.baseMs).toISOString();
  // The whole event as JSON, for the minimal hold transaction's INSERT.
  const event = JSON.stringify({ hold: { id: '00000000-0000-4000-8000-000000000000', status: 'held', resourceIds: [resourceId], start: t, end: t, seats: 1, expiresAt: t, bookingId: null, ownerId: ctx.userId, createdAt: t } });
  return { tenant: ctx.tenantId, owner: ctx.userId, seats: 1, ttl: 300, data: holdEventData(ctx, resourceId), event, pass_ppm: passPpm };
}

export type CapturedHold = Awaited<ReturnType<typeof capturedHold>>;

/** The server's statements for one hold, from a node's capture. */
export async function capturedHold(node: Node) {
  const trace = await readTrace(node);
  // A plain hold takes the one-statement fast path (a refused one runs the same statements and writes nothing):
  // the shape the server ran most often (after its first holds it remembers the resources and sends the write alone),
  // for one hold alone: under load the node writes the holds of concurrent requests several to a statement (group
  // commit, server/db/batch.ts; the P1 log gives holds per statement), which a pgbench script cannot size the same.
  const holds = trace.transactions.filter((t) => t.end === 'AUTOCOMMIT' && t.statements.some((s) => s.includes('create_hold_fast')));
  const alone = holds.filter((t) => !t.statements.some((s) => s.includes('WITH ORDINALITY')));
  const tx = (alone.length ? alone : holds).sort((a, b) => (b.count ?? 0) - (a.count ?? 0))[0];
  if (!tx) throw new Error(`no hold was captured on ${node.name}`);
  return { tx: tx.statements, outside: [...trace.outside.keys()] };
}
