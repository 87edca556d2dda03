/** Resources, schedules and blocks. */
import { z } from '@hono/zod-openapi';
import { Block, BlockCreate, ListQuery, Page, Resource, ResourceCreate, ResourcePatch, ScheduleInput, ScheduleResult } from '../../../shared/schemas';
import { requireTenantKey, requireTenantOrUser } from '../middleware/auth';
import { body, describe, idParam, query } from '../openapi';
import type { App, Services } from './types';

const ResourceListQuery = ListQuery.extend({ includeArchived: z.enum(['true', 'false']).optional() }).strict();

/** Registers resource, schedule and block routes. */
export function resourceRoutes(app: App, s: Services): void {
  const r = app.openAPIRegistry;
  describe(r, {
    method: 'post', path: '/v1/resources', tag: 'Resources', summary: 'Create a resource', auth: 'tenant API key',
    body: ResourceCreate, idempotent: true, ok: { status: 201, schema: Resource, description: 'The resource' }, errors: { 404: 'Parent not found' },
  });
  app.post('/v1/resources', async (c) => {
    const tenantId = requireTenantKey(c);
    const res = await s.resources.create(tenantId, await body(c, ResourceCreate));
    return c.json(res, 201, { ETag: `"${res.version}"`, Location: `/v1/resources/${res.id}` });
  });

  describe(r, {
    method: 'get', path: '/v1/resources', tag: 'Resources', summary: 'List resources (cursor paging)', auth: 'tenant API key or user token',
    query: ResourceListQuery, ok: { status: 200, schema: Page(Resource), description: 'A page of resources' },
  });
  app.get('/v1/resources', async (c) => {
    const p = requireTenantOrUser(c);
    const q = query(c, ResourceListQuery);
    return c.json(await s.resources.list(p.tenantId, q.cursor, q.limit, q.includeArchived === 'true'));
  });

  describe(r, {
    method: 'get', path: '/v1/resources/:id', tag: 'Resources', summary: 'Read a resource', auth: 'tenant API key or user token',
    ok: { status: 200, schema: Resource, description: 'The resource' }, errors: { 404: 'Not found' },
  });
  app.get('/v1/resources/:id', async (c) => {
    const p = requireTenantOrUser(c);
    const res = await s.resources.get(p.tenantId, idParam(c));
    return c.json(res, 200, { ETag: `"${res.version}"` });
  });

  describe(r, {
    method: 'patch', path: '/v1/resources/:id', tag: 'Resources', summary: 'Update a resource (slots follow; 409 if seats would be lost)', auth: 'tenant API key',
    body: ResourcePatch, idempotent: true, ok: { status: 200, schema: Resource, description: 'The updated resource' },
    errors: { 404: 'Not found', 409: 'Cycle, or taken seats would be dropped' },
  });
  app.patch('/v1/resources/:id', async (c) => {
    const tenantId = requireTenantKey(c);
    const id = idParam(c);
    const res = await s.resources.update(tenantId, id, await body(c, ResourcePatch));
    return c.json(res, 200, { ETag: `"${res.version}"` });
  });

  describe(r, {
    method: 'delete', path: '/v1/resources/:id', tag: 'Resources', summary: 'Archive a resource', auth: 'tenant API key',
    ok: { status: 200, schema: Resource, description: 'The archived resource' }, errors: { 404: 'Not found', 409: 'Live holds, bookings or children' },
  });
  app.delete('/v1/resources/:id', async (c) => {
    const tenantId = requireTenantKey(c);
    return c.json(await s.resources.archive(tenantId, idParam(c)));
  });

  describe(r, {
    method: 'put', path: '/v1/resources/:id/schedule', tag: 'Schedules', summary: 'Replace the opening hours and regenerate slots', auth: 'tenant API key',
    body: ScheduleInput, ok: { status: 200, schema: ScheduleResult, description: 'The schedule, the horizon and the open slot count' },
    errors: { 404: 'Not found', 409: 'Slots holding seats would be dropped (listed in conflicts)' },
  });
  app.put('/v1/resources/:id/schedule', async (c) => {
    const tenantId = requireTenantKey(c);
    const id = idParam(c);
    return c.json(await s.resources.putSchedule(tenantId, id, await body(c, ScheduleInput)));
  });

  describe(r, {
    method: 'get', path: '/v1/resources/:id/schedule', tag: 'Schedules', summary: 'Read the opening hours', auth: 'tenant API key or user token',
    ok: { status: 200, description: 'The schedule and horizon' }, errors: { 404: 'Not found' },
  });
  app.get('/v1/resources/:id/schedule', async (c) => {
    const p = requireTenantOrUser(c);
    return c.json(await s.resources.getSchedule(p.tenantId, idParam(c)));
  });

  describe(r, {
    method: 'post', path: '/v1/resources/:id/blocks', tag: 'Schedules', summary: 'Close a resource and its descendants over a range', auth: 'tenant API key',
    body: BlockCreate, idempotent: true, ok: { status: 201, schema: Block, description: 'The block' },
    errors: { 404: 'Not found', 409: 'Seats are taken in the range (listed in conflicts)' },
  });
  app.post('/v1/resources/:id/blocks', async (c) => {
    const tenantId = requireTenantKey(c);
    const id = idParam(c);
    const b = await body(c, BlockCreate);
    return c.json(await s.resources.addBlock(tenantId, id, Date.parse(b.start), Date.parse(b.end), b.reason ?? null), 201);
  });

  describe(r, {
    method: 'delete', path: '/v1/blocks/:id', tag: 'Schedules', summary: 'Lift a block', auth: 'tenant API key',
    ok: { status: 200, schema: Block, description: 'The removed block' }, errors: { 404: 'Not found' },
  });
  app.delete('/v1/blocks/:id', async (c) => {
    const tenantId = requireTenantKey(c);
    return c.json(await s.resources.removeBlock(tenantId, idParam(c)));
  });
}
