/** Group bookings: create, read, members, hold, confirm, cancel. */
import { GroupBooking, GroupBookingCreate, GroupCancel, GroupConfirm, GroupHold, GroupMember } from '../../../shared/schemas';
import { requireTenantOrUser } from '../middleware/auth';
import { body, idParam, LOCATION, route, UserIdParam, userIdParam } from '../openapi';
import type { App, Services } from './types';

/** Registers the group booking routes. */
export function groupRoutes(app: App, s: Services): void {
  const members = 'a member (user token) or the tenant API key';
  const organizers = 'an organizer (user token) or the tenant API key';
  const group = { schema: GroupBooking, description: 'The group booking with its document and server state' };
  const ok = { 200: group };

  route(app, {
    method: 'post', path: '/v1/group-bookings', tag: 'Group bookings', auth: 'user token or tenant API key',
    summary: 'Create a group booking (the creating user becomes an organizer) and its shared document',
    body: GroupBookingCreate, answers: { 201: { ...group, headers: { Location: LOCATION } } },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const g = await s.groups.create(p, await body(c, GroupBookingCreate));
    return c.json(g, 201, { Location: `/v1/group-bookings/${g.id}` });
  });

  route(app, {
    method: 'get', path: '/v1/group-bookings/{id}', tag: 'Group bookings', auth: members,
    summary: 'Snapshot of the document and the server state', answers: ok, errors: { 404: 'Not found or not a member' },
  }, async (c) => c.json(await s.groups.get(requireTenantOrUser(c), idParam(c))));

  route(app, {
    method: 'post', path: '/v1/group-bookings/{id}/members', tag: 'Group bookings', auth: organizers,
    summary: 'Add a member or change their role', body: GroupMember, answers: ok, errors: { 404: 'Not found' },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    const m = await body(c, GroupMember);
    return c.json(await s.groups.addMember(p, id, m.userId, m.role));
  });

  route(app, {
    method: 'delete', path: '/v1/group-bookings/{id}/members/{userId}', tag: 'Group bookings', auth: organizers,
    summary: 'Remove a member; their live connections close on every node', params: { userId: UserIdParam }, answers: ok, errors: { 404: 'Not found' },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    const userId = userIdParam(c);
    return c.json(await s.groups.removeMember(p, id, userId));
  });

  route(app, {
    method: 'post', path: '/v1/group-bookings/{id}/hold', tag: 'Group bookings', auth: organizers,
    summary: 'Hold seats for the converged draft (one seat per participant unless seats is set); concurrent calls share one hold',
    body: GroupHold, bodyRequired: false, answers: ok, errors: { 404: 'Not found', 409: 'Seats unavailable or wrong state', 422: 'Draft incomplete or a rule broken' },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    const b = await body(c, GroupHold, true);
    return c.json(await s.groups.hold(p, id, b.ttlSeconds));
  });

  route(app, {
    method: 'post', path: '/v1/group-bookings/{id}/confirm', tag: 'Group bookings', auth: organizers,
    summary: "Confirm the group's hold into a booking", body: GroupConfirm, bodyRequired: false, answers: ok,
    errors: { 404: 'Not found', 409: 'Not held', 410: 'The hold expired', 422: 'payment-required: the resources are priced (group bookings take no payment; docs/api.md "Payments")' },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    return c.json(await s.groups.confirm(p, id, await body(c, GroupConfirm, true)));
  });

  route(app, {
    method: 'post', path: '/v1/group-bookings/{id}/cancel', tag: 'Group bookings', auth: organizers,
    summary: "Release the group's hold or cancel its booking", body: GroupCancel, bodyRequired: false, answers: ok,
    errors: { 404: 'Not found' },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    const b = await body(c, GroupCancel, true);
    return c.json(await s.groups.cancel(p, id, b.reason ?? null));
  });
}
