/** Group bookings: create, read, members, hold, confirm, cancel. */
import { GroupBooking, GroupBookingCreate, GroupCancel, GroupConfirm, GroupHold, GroupMember } from '../../../shared/schemas';
import { DomainError } from '../../core/errors';
import { requireTenantOrUser } from '../middleware/auth';
import { body, describe, idParam } from '../openapi';
import type { App, Services } from './types';

/** Registers the group booking routes. */
export function groupRoutes(app: App, s: Services): void {
  const r = app.openAPIRegistry;
  const members = 'a member (user token) or the tenant API key';
  const organizers = 'an organizer (user token) or the tenant API key';
  const ok = { status: 200, schema: GroupBooking, description: 'The group booking with its document and server state' };

  describe(r, {
    method: 'post', path: '/v1/group-bookings', tag: 'Group bookings', auth: 'user token or tenant API key',
    summary: 'Create a group booking (the creating user becomes an organizer) and its shared document',
    body: GroupBookingCreate, idempotent: true, ok: { ...ok, status: 201 },
  });
  app.post('/v1/group-bookings', async (c) => {
    const p = requireTenantOrUser(c);
    const g = await s.groups.create(p, await body(c, GroupBookingCreate));
    return c.json(g, 201, { Location: `/v1/group-bookings/${g.id}` });
  });

  describe(r, {
    method: 'get', path: '/v1/group-bookings/:id', tag: 'Group bookings', auth: members,
    summary: 'Snapshot of the document and the server state', ok, errors: { 404: 'Not found or not a member' },
  });
  app.get('/v1/group-bookings/:id', async (c) => c.json(await s.groups.get(requireTenantOrUser(c), idParam(c))));

  describe(r, {
    method: 'post', path: '/v1/group-bookings/:id/members', tag: 'Group bookings', auth: organizers,
    summary: 'Add a member or change their role', body: GroupMember, idempotent: true, ok, errors: { 404: 'Not found' },
  });
  app.post('/v1/group-bookings/:id/members', async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    const m = await body(c, GroupMember);
    return c.json(await s.groups.addMember(p, id, m.userId, m.role));
  });

  describe(r, {
    method: 'delete', path: '/v1/group-bookings/:id/members/:userId', tag: 'Group bookings', auth: organizers,
    summary: 'Remove a member; their live connections close on every node', ok, errors: { 404: 'Not found' },
  });
  app.delete('/v1/group-bookings/:id/members/:userId', async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    const userId = c.req.param('userId');
    if (!userId || userId.length > 200) throw new DomainError('validation-failed', 'userId must be 1 to 200 characters', { errors: [{ path: 'path.userId', message: 'must be 1 to 200 characters' }] });
    return c.json(await s.groups.removeMember(p, id, userId));
  });

  describe(r, {
    method: 'post', path: '/v1/group-bookings/:id/hold', tag: 'Group bookings', auth: organizers,
    summary: 'Hold seats for the converged draft (one seat per participant unless seats is set); concurrent calls share one hold',
    body: GroupHold, bodyRequired: false, idempotent: true, ok, errors: { 404: 'Not found', 409: 'Seats unavailable or wrong state', 422: 'Draft incomplete or a rule broken' },
  });
  app.post('/v1/group-bookings/:id/hold', async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    const b = await body(c, GroupHold, true);
    return c.json(await s.groups.hold(p, id, b.ttlSeconds));
  });

  describe(r, {
    method: 'post', path: '/v1/group-bookings/:id/confirm', tag: 'Group bookings', auth: organizers,
    summary: "Confirm the group's hold into a booking", body: GroupConfirm, bodyRequired: false, idempotent: true, ok,
    errors: { 404: 'Not found', 409: 'Not held', 410: 'The hold expired' },
  });
  app.post('/v1/group-bookings/:id/confirm', async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    return c.json(await s.groups.confirm(p, id, await body(c, GroupConfirm, true)));
  });

  describe(r, {
    method: 'post', path: '/v1/group-bookings/:id/cancel', tag: 'Group bookings', auth: organizers,
    summary: "Release the group's hold or cancel its booking", body: GroupCancel, bodyRequired: false, idempotent: true, ok,
    errors: { 404: 'Not found' },
  });
  app.post('/v1/group-bookings/:id/cancel', async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    const b = await body(c, GroupCancel, true);
    return c.json(await s.groups.cancel(p, id, b.reason ?? null));
  });
}
