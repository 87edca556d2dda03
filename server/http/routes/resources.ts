/** Resources, schedules and blocks. */
import { z } from '@hono/zod-openapi';
import { Block, BlockCreate, ListQuery, Page, Resource, ResourceCreate, ResourcePatch, ScheduleInput, ScheduleRead, ScheduleResult } from '../../../shared/schemas';
import { requireTenantKey, requireTenantOrUser } from '../middleware/auth';
import { body, ETAG, idParam, LOCATION, query, route } from '../openapi';
import type { App, Services } from './types';

const ResourceListQuery = ListQuery.extend({ includeArchived: z.enum(['true', 'false']).optional() }).strict();

/** Registers resource, schedule and block routes. */
export function resourceRoutes(app: App, s: Services): void {
  route(app, {
    method: 'post', path: '/v1/resources', tag: 'Resources', summary: 'Create a resource', auth: 'tenant API key',
    body: ResourceCreate, answers: { 201: { schema: Resource, description: 'The resource', headers: { ETag: ETAG, Location: LOCATION } } },
    errors: { 404: 'Parent not found' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const res = await s.resources.create(tenantId, await body(c, ResourceCreate));
    return c.json(res, 201, { ETag: `"${res.version}"`, Location: `/v1/resources/${res.id}` });
  });

  route(app, {
    method: 'get', path: '/v1/resources', tag: 'Resources', summary: 'List resources (cursor paging)', auth: 'tenant API key or user token',
    query: ResourceListQuery, answers: { 200: { schema: Page(Resource), description: 'A page of resources' } },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const q = query(c, ResourceListQuery);
    return c.json(await s.resources.list(p.tenantId, q.cursor, q.limit, q.includeArchived === 'true'));
  });

  route(app, {
    method: 'get', path: '/v1/resources/{id}', tag: 'Resources', summary: 'Read a resource', auth: 'tenant API key or user token',
    answers: { 200: { schema: Resource, description: 'The resource', headers: { ETag: ETAG } } },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const res = await s.resources.get(p.tenantId, idParam(c));
    return c.json(res, 200, { ETag: `"${res.version}"` });
  });

  route(app, {
    method: 'patch', path: '/v1/resources/{id}', tag: 'Resources', summary: 'Update a resource (slots follow; 409 if seats would be lost)', auth: 'tenant API key',
    body: ResourcePatch, answers: { 200: { schema: Resource, description: 'The updated resource', headers: { ETag: ETAG } } },
    errors: { 404: 'Not found (the resource or the new parent)', 409: 'Cycle, or taken seats would be dropped', 422: 'limit-exceeded (schedule.slots): the change would regenerate too many slots at once' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const id = idParam(c);
    const res = await s.resources.update(tenantId, id, await body(c, ResourcePatch));
    return c.json(res, 200, { ETag: `"${res.version}"` });
  });

  route(app, {
    method: 'delete', path: '/v1/resources/{id}', tag: 'Resources', summary: 'Archive a resource', auth: 'tenant API key',
    answers: { 200: { schema: Resource, description: 'The archived resource' } }, errors: { 409: 'Live holds, bookings or children' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    return c.json(await s.resources.archive(tenantId, idParam(c)));
  });

  route(app, {
    method: 'put', path: '/v1/resources/{id}/schedule', tag: 'Schedules', summary: 'Replace the opening hours and regenerate slots', auth: 'tenant API key',
    body: ScheduleInput, answers: { 200: { schema: ScheduleResult, description: 'The schedule, the horizon and the open slot count' } },
    errors: { 409: 'Slots holding seats would be dropped (listed in conflicts)', 422: 'limit-exceeded (schedule.slots): the change would regenerate too many slots at once' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const id = idParam(c);
    return c.json(await s.resources.putSchedule(tenantId, id, await body(c, ScheduleInput)));
  });

  route(app, {
    method: 'get', path: '/v1/resources/{id}/schedule', tag: 'Schedules', summary: 'Read the opening hours', auth: 'tenant API key or user token',
    answers: { 200: { schema: ScheduleRead, description: 'The schedule and horizon' } },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    return c.json(await s.resources.getSchedule(p.tenantId, idParam(c)));
  });

  route(app, {
    method: 'post', path: '/v1/resources/{id}/blocks', tag: 'Schedules', summary: 'Close a resource and its descendants over a range', auth: 'tenant API key',
    body: BlockCreate, answers: { 201: { schema: Block, description: 'The block' } },
    errors: { 409: 'Seats are taken in the range (listed in conflicts)', 422: 'limit-exceeded (schedule.slots): the change would regenerate too many slots at once' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const id = idParam(c);
    const b = await body(c, BlockCreate);
    return c.json(await s.resources.addBlock(tenantId, id, Date.parse(b.start), Date.parse(b.end), b.reason ?? null), 201);
  });

  route(app, {
    method: 'delete', path: '/v1/blocks/{id}', tag: 'Schedules', summary: 'Lift a block', auth: 'tenant API key',
    answers: { 200: { schema: Block, description: 'The removed block' } }, errors: { 409: 'Seats are taken where the lifted range reopens (listed in conflicts)', 422: 'limit-exceeded (schedule.slots): the change would regenerate too many slots at once' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    return c.json(await s.resources.removeBlock(tenantId, idParam(c)));
  });
}
