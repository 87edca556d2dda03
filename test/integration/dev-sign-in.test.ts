/** Development mode: demo users sign in without a password and the dev tenant gets demo resources; refused outside it. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, isolatedDatabase, startNode, type TestNode } from '../helpers/node';

let dev: TestNode;
let prod: TestNode;
let db: Awaited<ReturnType<typeof isolatedDatabase>>;
beforeAll(async () => {
  // Development mode writes the dev tenant and its resources: a database of its own.
  db = await isolatedDatabase();
  dev = await startNode({ ADMIN_TOKEN: '', DATABASE_URL: db.url });
  prod = await startNode();
});
afterAll(async () => {
  await dev?.stop();
  await prod?.stop();
  await db?.drop();
});

describe('development sign-in', () => {
  it('lists the demo users and signs one in with a working user token of the dev tenant', async () => {
    const anon = client(dev.url);
    const users = await anon('GET', '/v1/dev/users');
    expect(users.status).toBe(200);
    expect(users.body.tenantId).toBe(dev.node.dev!.tenantId);
    expect(users.body.users.map((u: any) => u.userId)).toEqual(['alice', 'bob', 'carol', 'dan']);

    const session = await anon('POST', '/v1/dev/tokens', { userId: 'bob' });
    expect(session.status).toBe(201);
    expect(session.body).toMatchObject({ tenantId: dev.node.dev!.tenantId, user: { userId: 'bob', name: 'Bob Baker', role: 'organizer' } });
    const asBob = client(dev.url, session.body.token);
    const resources = await asBob('GET', '/v1/resources?limit=50');
    expect(resources.status).toBe(200);
    expect(resources.body.items.length).toBeGreaterThan(0);

    const unknown = await anon('POST', '/v1/dev/tokens', { userId: 'mallory' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('not-found');
    const bad = await anon('POST', '/v1/dev/tokens', { userId: 'bob', role: 'admin' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('validation-failed');
  });

  it('seeds demo resources with opening hours once: a second node on the same database adds none', async () => {
    const api = client(dev.url, dev.node.dev!.apiKey);
    const before = await api('GET', '/v1/resources?limit=200&includeArchived=true');
    const names = before.body.items.map((r: any) => r.name);
    expect(names).toEqual(expect.arrayContaining(['Berlin office', 'Focus booth', 'Room Ada', 'Equipment', 'Projector']));
    const booth = before.body.items.find((r: any) => r.name === 'Focus booth');
    const office = before.body.items.find((r: any) => r.name === 'Berlin office');
    expect(booth.parentId).toBe(office.id);
    expect((await api('GET', `/v1/resources/${booth.id}/schedule`)).status).toBe(200);

    const second = await startNode({ ADMIN_TOKEN: '', DATABASE_URL: db.url });
    try {
      expect(second.node.dev!.tenantId).toBe(dev.node.dev!.tenantId);
      const after = await api('GET', '/v1/resources?limit=200&includeArchived=true');
      expect(after.body.items.length).toBe(before.body.items.length);
    } finally {
      await second.stop();
    }
  });

  it('is refused with 403 outside development mode, and no demo resources are made', async () => {
    const anon = client(prod.url);
    // The route exists (an OpenAPI-documented operation), and says why it refuses.
    const users = await anon('GET', '/v1/dev/users');
    expect(users.status).toBe(403);
    expect(users.body.code).toBe('forbidden');
    expect(users.body.detail).toMatch(/development mode/);
    const session = await anon('POST', '/v1/dev/tokens', { userId: 'alice' });
    expect(session.status).toBe(403);
    expect(session.body.code).toBe('forbidden');
    expect(prod.node.dev).toBeUndefined();
    const seeded = await prod.pool.query("SELECT count(*)::int AS n FROM resources WHERE name = 'Focus booth'");
    expect(seeded.rows[0].n).toBe(0);
  });
});
