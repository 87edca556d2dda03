/**
 * Credentials that stay revoked, on two nodes with real Redis: API keys are
 * created, listed, rotated with an overlap and revoked; user tokens are
 * revoked one by one or all of a user's; every change is refused on both
 * nodes within a second, and live Socket.IO connections on the other node
 * are cut off; an expired token ends its live connection at its expiry.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, futureWeekday, newTenant, startCluster, waitFor } from '../helpers/node';
import { liveClient } from '../helpers/process';
import { forgeToken, rawSocket } from '../security/helpers';

const JWT_SECRET = 'test-jwt-secret-0123456789-0123456789-abcdef';
let cluster: Awaited<ReturnType<typeof startCluster>>;
const sockets: { socket: { disconnect(): void } }[] = [];

beforeAll(async () => {
  cluster = await startCluster(2);
});
afterAll(async () => {
  for (const s of sockets) s.socket.disconnect();
  await cluster?.stop();
});

const day = futureWeekday(5);
const range = (h: number) => ({ start: `${day}T${String(h).padStart(2, '0')}:00:00Z`, end: `${day}T${String(h + 1).padStart(2, '0')}:00:00Z` });

/** Resolves with the disconnect reason, or rejects after `ms`. */
function disconnected(socket: { once(event: 'disconnect', fn: (reason: string) => void): unknown }, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not disconnected within ${ms} ms`)), ms);
    socket.once('disconnect', (reason) => {
      clearTimeout(t);
      resolve(reason);
    });
  });
}

describe('API keys', () => {
  it('are created, listed without secrets, and the last live key cannot be revoked', async () => {
    const [a, b] = cluster.nodes;
    const tenant = await newTenant(a!);
    const made = await tenant.api('POST', '/v1/api-keys', { name: 'billing' });
    expect(made.status, made.text).toBe(201);
    expect(made.body).toMatchObject({ name: 'billing', expiresAt: null, revokedAt: null });
    expect(made.body.apiKey).toMatch(/^sw_/);
    expect(made.body.prefix).toBe(made.body.apiKey.slice(0, 7));
    const list = await client(b!.url, made.body.apiKey)('GET', '/v1/api-keys');
    expect(list.status).toBe(200);
    expect(list.body.items.map((k: { name: string }) => k.name)).toEqual(['default', 'billing']);
    expect(list.text).not.toContain(made.body.apiKey);
    expect(list.text).not.toContain(tenant.key);

    const first = list.body.items[0].id;
    expect((await tenant.api('DELETE', `/v1/api-keys/${first}`)).status).toBe(200);
    // Only `billing` is left: it cannot go.
    const last = await client(a!.url, made.body.apiKey)('DELETE', `/v1/api-keys/${made.body.id}`);
    expect(last.status).toBe(409);
    expect(last.body.code).toBe('last-api-key');
    // Paging one key at a time visits each once (keys made before migration 004 included: the cursor compares exactly).
    const seen: string[] = [];
    for (let cursor: string | null = null, n = 0; n < 10; n++) {
      const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await client(a!.url, made.body.apiKey)('GET', `/v1/api-keys?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.body.items.map((k) => k.id));
      cursor = page.body.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual([first, made.body.id]);
    // A cursor this API did not make is 400, whatever it holds.
    for (const forged of [[1e300, randomUUID()], [0, '-'.repeat(36)], ['x', randomUUID()]]) {
      const r = await client(a!.url, made.body.apiKey)('GET', `/v1/api-keys?cursor=${Buffer.from(JSON.stringify(forged)).toString('base64url')}`);
      expect(r.status, r.text).toBe(400);
    }
    // Revoking again answers the same key, unchanged.
    const again = await client(a!.url, made.body.apiKey)('DELETE', `/v1/api-keys/${first}`);
    expect(again.status).toBe(200);
    expect(again.body.revokedAt).not.toBeNull();
  });

  it('a revoked key is refused on both nodes within a second, and its live connection on the other node is cut', async () => {
    const [a, b] = cluster.nodes;
    const tenant = await newTenant(a!);
    const room = await tenant.newResource();
    const doomed = await tenant.api('POST', '/v1/api-keys', { name: 'doomed' });
    // Both nodes have the key cached (a lookup on each).
    for (const n of [a!, b!]) expect((await client(n.url, doomed.body.apiKey)('GET', '/v1/resources')).status).toBe(200);
    const live = await liveClient(b!.url, doomed.body.apiKey);
    sockets.push(live);
    const gone = disconnected(live.socket, 1_000);
    const t0 = Date.now();
    expect((await tenant.api('DELETE', `/v1/api-keys/${doomed.body.id}`)).status).toBe(200);
    expect(await gone).toBe('io server disconnect');
    for (const n of [a!, b!]) {
      await waitFor(async () => (await client(n.url, doomed.body.apiKey)('GET', '/v1/resources')).status === 401, 1_000, `401 on ${n.url}`);
    }
    expect(Date.now() - t0).toBeLessThan(1_500);
    // A new connection with it is refused; the tenant's other key still works.
    await expect(liveClient(b!.url, doomed.body.apiKey)).rejects.toThrow('unauthorized');
    expect((await client(b!.url, tenant.key)('POST', '/v1/holds', { resourceIds: [room.id], ...range(9) })).status).toBe(201);
  });

  it('a rotated key keeps working for its overlap on both nodes, then stops there and on its live connections', async () => {
    const [a, b] = cluster.nodes;
    const tenant = await newTenant(a!);
    const old = await tenant.api('POST', '/v1/api-keys', { name: 'rotating' });
    const live = await liveClient(b!.url, old.body.apiKey);
    sockets.push(live);
    const rotated = await client(a!.url, old.body.apiKey)('POST', `/v1/api-keys/${old.body.id}/rotate`, { overlapSeconds: 2 });
    expect(rotated.status, rotated.text).toBe(201);
    expect(rotated.body).toMatchObject({ name: 'rotating', expiresAt: null });
    expect(rotated.body.apiKey).not.toBe(old.body.apiKey);
    const listed = (await client(b!.url, rotated.body.apiKey)('GET', '/v1/api-keys')).body.items.find((k: { id: string }) => k.id === old.body.id);
    expect(Date.parse(listed.expiresAt) - Date.now()).toBeGreaterThan(0);
    expect(Date.parse(listed.expiresAt) - Date.now()).toBeLessThanOrEqual(2_000);
    // During the overlap both keys work everywhere.
    for (const n of [a!, b!]) for (const key of [old.body.apiKey, rotated.body.apiKey]) expect((await client(n.url, key)('GET', '/v1/resources')).status).toBe(200);
    expect(live.socket.connected).toBe(true);
    // After it, the old key is refused everywhere and its connection is gone.
    expect(await disconnected(live.socket, 4_000)).toBe('io server disconnect');
    for (const n of [a!, b!]) {
      await waitFor(async () => (await client(n.url, old.body.apiKey)('GET', '/v1/resources')).status === 401, 1_000, 'old key refused');
      expect((await client(n.url, rotated.body.apiKey)('GET', '/v1/resources')).status).toBe(200);
    }
    // A key that stopped cannot be rotated again.
    const late = await client(a!.url, rotated.body.apiKey)('POST', `/v1/api-keys/${old.body.id}/rotate`, {});
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('api-key-inactive');
  });
});

describe('user tokens', () => {
  it('a revoked token is refused on both nodes within a second and its live connection is cut; its commands are refused', async () => {
    const [a, b] = cluster.nodes;
    const tenant = await newTenant(a!);
    const room = await tenant.newResource();
    const issued = await tenant.api('POST', '/v1/tokens', { userId: 'mallory', name: 'Mallory', role: 'member' });
    expect(issued.status).toBe(201);
    expect(issued.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const claims = JSON.parse(Buffer.from(issued.body.token.split('.')[1], 'base64url').toString());
    expect(claims.jti).toBe(issued.body.id);
    expect(claims.exp).toBeTypeOf('number');
    const token = issued.body.token as string;
    for (const n of [a!, b!]) expect((await client(n.url, token)('GET', '/v1/resources')).status).toBe(200);
    const live = await liveClient(b!.url, token);
    sockets.push(live);
    const gone = disconnected(live.socket, 1_000);
    const revoked = await tenant.api('DELETE', `/v1/tokens/${issued.body.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: issued.body.id, userId: 'mallory' });
    await gone;
    for (const n of [a!, b!]) {
      await waitFor(async () => (await client(n.url, token)('POST', '/v1/holds', { resourceIds: [room.id], ...range(10) })).status === 401, 1_000, 'token refused');
    }
    await expect(liveClient(a!.url, token)).rejects.toThrow('unauthorized');
    // Unknown ids are 404; revoking again is the same answer.
    expect((await tenant.api('DELETE', `/v1/tokens/${randomUUID()}`)).status).toBe(404);
    expect((await tenant.api('DELETE', `/v1/tokens/${issued.body.id}`)).body.revokedAt).toBe(revoked.body.revokedAt);
  });

  it("cutting a user off revokes every token of theirs on both nodes, and no one else's", async () => {
    const [a, b] = cluster.nodes;
    const tenant = await newTenant(a!);
    const mint = async (userId: string) => (await tenant.api('POST', '/v1/tokens', { userId, name: userId, role: 'member' })).body.token as string;
    const eve1 = await mint('eve');
    const eve2 = await mint('eve');
    const ann = await mint('ann');
    const live = await liveClient(a!.url, eve2);
    sockets.push(live);
    const gone = disconnected(live.socket, 1_000);
    const cut = await client(b!.url, tenant.key)('DELETE', '/v1/users/eve/tokens');
    expect(cut.status).toBe(200);
    expect(cut.body.userId).toBe('eve');
    expect(cut.body.revoked).toHaveLength(2);
    await gone;
    for (const n of [a!, b!]) {
      for (const tok of [eve1, eve2]) await waitFor(async () => (await client(n.url, tok)('GET', '/v1/resources')).status === 401, 1_000, 'eve refused');
      expect((await client(n.url, ann)('GET', '/v1/resources')).status).toBe(200);
    }
    // The feed records it, without any token.
    const feed = await tenant.api('GET', '/v1/events?limit=1000');
    const event = feed.body.events.find((e: { type: string }) => e.type === 'token.revoked');
    expect(event.data).toEqual({ userId: 'eve', tokenIds: cut.body.revoked });
    expect(feed.text).not.toContain(eve1);
  });

  it('a live connection ends when its token expires, and a command sent at that moment is refused', async () => {
    const [a] = cluster.nodes;
    const tenant = await newTenant(a!);
    const room = await tenant.newResource();
    const exp = Math.floor(Date.now() / 1000) + 2;
    const short = await forgeToken({ tid: tenant.id, sub: 'brief', exp, jti: randomUUID() }, JWT_SECRET);
    const live = await liveClient(a!.url, short);
    sockets.push(live);
    const held = await live.call('hold.create', { resourceIds: [room.id], ...range(11) });
    expect(held.ok).toBe(true);
    const reason = await disconnected(live.socket, 4_000);
    expect(reason).toBe('io server disconnect');
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
    expect((await client(a!.url, short)('POST', `/v1/holds/${held.data.id}/confirm`, { customer: { name: 'B', email: 'b@example.com' } })).status).toBe(401);
  });

  it('a Yjs connection closes 4401 when its token is revoked (on another node) or expires', async () => {
    const [a, b] = cluster.nodes;
    const tenant = await newTenant(a!);
    const room = await tenant.newResource();
    const issued = await tenant.api('POST', '/v1/tokens', { userId: 'ola', name: 'Ola', role: 'organizer' });
    const group = await client(a!.url, issued.body.token)('POST', '/v1/group-bookings', { title: 'Trip', resourceIds: [room.id] });
    expect(group.status).toBe(201);
    const ws = (url: string, token: string) => rawSocket(`${url.replace('http', 'ws')}/yjs/${group.body.docName}?token=${token}`);
    const onB = await ws(b!.url, issued.body.token);
    const t0 = Date.now();
    expect((await tenant.api('DELETE', `/v1/tokens/${issued.body.id}`)).status).toBe(200);
    expect((await onB.closed).code).toBe(4401);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect((await (await ws(a!.url, issued.body.token)).closed).code).toBe(4401);

    // A member whose token expires in 2 s: closed at that moment.
    expect((await tenant.api('POST', `/v1/group-bookings/${group.body.id}/members`, { userId: 'brief', role: 'participant' })).status).toBe(200);
    const exp = Math.floor(Date.now() / 1000) + 2;
    const brief = await ws(a!.url, await forgeToken({ tid: tenant.id, sub: 'brief', exp, jti: randomUUID() }, JWT_SECRET));
    expect(brief.isOpen()).toBe(true);
    expect((await brief.closed).code).toBe(4401);
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
  });
});
