/**
 * Hostile clients against two nodes with the production limits (issue 8's
 * attacks, replayed): one ordinary end-user token, or a stranger's address,
 * tries to take the cluster down or slow other tenants. After each attack
 * both nodes are up, /healthz answered within a second throughout, the
 * victim tenant saw no 5xx, and the attacker got 4xx/429 problems naming the
 * limit (`limit` in the body, Retry-After and RateLimit headers where a wait helps).
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { futureWeekday, newTenant, type TestNode } from '../helpers/node';
import { JWT_SECRET, liveClient, rawRequest, type RawOutcome } from '../helpers/process';
import { forgeToken } from './helpers';
import { expectUnharmed, hostileStage, openFds, probeHealth, rssMiB, startVictim, type Probe, type Victim } from './hostile-harness';

let stage: Awaited<ReturnType<typeof hostileStage>>;
let probe: Probe;
let victim: Victim;
let mallory: Awaited<ReturnType<typeof newTenant>>; // the attacker's tenant (its end users attack)
let room: { id: string };
const day = futureWeekday(12);
const live: { socket: { disconnect(): void } }[] = [];

beforeAll(async () => {
  stage = await hostileStage({ HOLD_MIN_TTL_SECONDS: '1' });
  mallory = await newTenant(stage.nodes[0] as unknown as TestNode, 'attacker');
  room = await mallory.newResource({ capacity: 4, slotMinutes: 5 });
  probe = probeHealth(stage.nodes);
  victim = await startVictim(stage.nodes, stage.victimTenant, stage.victimRoom.id);
}, 120_000);

afterAll(async () => {
  for (const s of live) s.socket.disconnect();
  if (probe) console.log(`hostile-http: slowest /healthz ${JSON.stringify(probe.worst)} ms; victim requests ${victim?.outcomes.length}, slowest ${Math.max(0, ...(victim?.outcomes ?? []).map((o) => o.ms))} ms`);
  probe?.stop();
  await victim?.stop();
  await stage?.stop();
});

/** After every attack: both nodes up, /healthz within a second throughout, the victim never saw a 5xx. */
afterEach(() => expectUnharmed(stage.nodes, probe, victim));

/** A user token of the attacker's tenant (each attack gets its own, so budgets start fresh). */
async function userToken(userId = `mallory-${randomUUID().slice(0, 8)}`): Promise<string> {
  const r = await mallory.api('POST', '/v1/tokens', { userId, name: userId, role: 'member' });
  expect(r.status, r.text).toBe(201);
  return r.body.token;
}

const slot = (i: number) => {
  const start = Date.parse(`${day}T08:00:00Z`) + i * 5 * 60_000;
  return { start: new Date(start).toISOString(), end: new Date(start + 5 * 60_000).toISOString() };
};
const statusOf = (o: RawOutcome) => (o.kind === 'response' ? o.status : o.code);

/** Checks a refusal names its limit: a catalogue problem with `limit`, and Retry-After when it says to wait. */
function expectNamedLimit(o: RawOutcome, status: number, limits: string[]) {
  expect(o.kind).toBe('response');
  if (o.kind !== 'response') return;
  expect(o.status, JSON.stringify(o.body)).toBe(status);
  expect(o.contentType).toMatch(/^application\/problem\+json/);
  expect(limits, JSON.stringify(o.body)).toContain(o.body.limit);
  expect(o.body.detail).toBeTypeOf('string');
  if (typeof o.body.retryAfter === 'number') expect(Number(o.headers['retry-after'])).toBe(o.body.retryAfter);
}

/** Runs `n` calls, `width` at a time. */
async function storm<T>(n: number, width: number, call: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    for (let i = next++; i < n; i = next++) out[i] = await call(i);
  }));
  return out;
}

// Each attack comes from an address of its own, so the budgets of one never meet another's.
let nextAddress = 10;
const attackerAddress = () => `127.0.0.${nextAddress++}`;

describe('holds from one end-user token', () => {
  it('at most USER_MAX_HOLDS live holds at once, and a slot re-held only USER_REHOLD_LIMIT times', async () => {
    const ATTACKER = attackerAddress();
    const token = await userToken();
    const [a, b] = stage.nodes;
    const tries = await storm(12, 12, (i) => rawRequest((i % 2 ? b : a)!.url, 'POST', '/v1/holds', { token, localAddress: ATTACKER, body: { resourceIds: [room.id], ...slot(i), ttlSeconds: 900 } }));
    const held = tries.filter((o) => statusOf(o) === 201);
    expect(held).toHaveLength(5);
    for (const o of tries.filter((x) => statusOf(x) !== 201)) expectNamedLimit(o, 429, ['holds.user']);
    const refused = tries.find((o) => statusOf(o) === 429)!;
    if (refused.kind === 'response') expect(Number(refused.headers['retry-after'])).toBeGreaterThan(800);

    // Release one and take the same slot again and again: the third hold of one slot in the window is the last.
    const first = held[0]!;
    if (first.kind !== 'response') throw new Error('unreachable');
    let id: string = first.body.id;
    const again = { resourceIds: [room.id], start: first.body.start, end: first.body.end };
    const answers: RawOutcome[] = [];
    for (let i = 0; i < 3; i++) {
      expect(statusOf(await rawRequest(a!.url, 'DELETE', `/v1/holds/${id}`, { token, localAddress: ATTACKER }))).toBe(200);
      const h = await rawRequest(b!.url, 'POST', '/v1/holds', { token, localAddress: ATTACKER, body: again });
      answers.push(h);
      if (h.kind === 'response' && h.status === 201) id = h.body.id;
    }
    expect(answers.map(statusOf)).toEqual([201, 201, 429]);
    expectNamedLimit(answers[2]!, 429, ['holds.rehold']);
  });

  it("a token's request budget is one budget on both nodes together, with RateLimit headers", async () => {
    const ATTACKER = attackerAddress();
    const token = await userToken();
    const [a, b] = stage.nodes;
    const t0 = Date.now();
    const tries = await storm(160, 16, (i) => rawRequest((i % 2 ? b : a)!.url, 'GET', '/v1/resources?limit=1', { token, localAddress: ATTACKER }));
    expect(Date.now() - t0, 'the burst fits in one 10 s window').toBeLessThan(9_000);
    const ok = tries.filter((o) => statusOf(o) === 200);
    // RATE_LIMIT_USER 600/min: 100 per 10-second window, across both nodes.
    expect(ok.length).toBe(100);
    const first = ok[0]!;
    if (first.kind === 'response') {
      expect(first.headers['ratelimit-policy']).toBe('"api.user";q=100;w=10');
      expect(first.headers.ratelimit).toMatch(/^"api\.user";r=\d+;t=\d+$/);
    }
    for (const o of tries.filter((x) => statusOf(x) !== 200)) {
      expectNamedLimit(o, 429, ['rate.api.user']);
      if (o.kind === 'response') expect(o.headers.ratelimit).toMatch(/^"api\.user";r=0;t=\d+$/);
    }
  });
});

describe('live commands from one end-user token', () => {
  it('a socket firing 1,000 subscribes without waiting gets 429s, and other tenants and the sweeper do not wait', async () => {
    const ATTACKER = attackerAddress();
    const token = await userToken();
    const [a] = stage.nodes;
    // The victim holds a seat for 2 s: it must be expired on time while the storm runs.
    const expiring = await rawRequest(a!.url, 'POST', '/v1/holds', {
      token: stage.victimTenant.key, body: { resourceIds: [stage.victimRoom.id], start: `${day}T20:00:00Z`, end: `${day}T20:30:00Z`, ttlSeconds: 2 },
    });
    expect(statusOf(expiring)).toBe(201);
    const before = victim.outcomes.length;
    const attacker = await liveClient(a!.url, token, { localAddress: ATTACKER });
    live.push(attacker);
    const subscribe = { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:00:00Z` };
    const acks = await Promise.all(Array.from({ length: 1_000 }, () => attacker.call('subscribe', subscribe)));
    const refused = acks.filter((x) => !x.ok);
    expect(refused.length).toBeGreaterThan(500);
    for (const x of refused) {
      expect(x.error.status, JSON.stringify(x.error)).toBe(429);
      expect(['inflight.socket', 'rate.availability.user', 'rate.availability.ip']).toContain(x.error.limit);
    }
    // The victim's hold expired within about a second of its expiry, storm or not.
    if (expiring.kind !== 'response') throw new Error('unreachable');
    const expiresAt = Date.parse(expiring.body.expiresAt);
    let seen = 0;
    while (Date.now() < expiresAt + 5_000) {
      const h = await rawRequest(a!.url, 'GET', `/v1/holds/${expiring.body.id}`, { token: stage.victimTenant.key });
      if (h.kind === 'response' && h.body.status === 'expired') {
        seen = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen, 'the victim hold expired').toBeGreaterThan(0);
    expect(seen - expiresAt).toBeLessThan(1_500);
    const during = victim.outcomes.slice(before);
    expect(during.length).toBeGreaterThan(0);
    expect(Math.max(...during.map((o) => o.ms)), 'slowest victim request during the storm (ms)').toBeLessThan(1_500);
    attacker.socket.disconnect();
  });

  it('one token opens at most SOCKETS_PER_USER live connections on a node', async () => {
    const ATTACKER = attackerAddress();
    const token = await userToken();
    const [a] = stage.nodes;
    const results = await Promise.allSettled(Array.from({ length: 60 }, () => liveClient(a!.url, token, { localAddress: ATTACKER })));
    const connected = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof liveClient>>>).value);
    live.push(...connected);
    expect(connected.length).toBe(20);
    for (const r of results.filter((x) => x.status === 'rejected')) {
      const err = (r as PromiseRejectedResult).reason as Error & { data?: { limit?: string; status?: number } };
      expect(err.message).toBe('too-many-connections');
      expect(err.data).toMatchObject({ status: 429, limit: 'sockets.user' });
    }
    for (const c of connected) c.socket.disconnect();
  });
});

describe('credentials on live connections', () => {
  it('a revoked key and an expired or exp-less token hold nothing over Socket.IO', async () => {
    const [a, b] = stage.nodes;
    const key = await mallory.api('POST', '/v1/api-keys', { name: 'soon revoked' });
    const keyed = await liveClient(b!.url, key.body.apiKey);
    live.push(keyed);
    expect((await mallory.api('DELETE', `/v1/api-keys/${key.body.id}`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(keyed.socket.connected).toBe(false);
    await expect(liveClient(b!.url, key.body.apiKey)).rejects.toThrow('unauthorized');

    const exp = Math.floor(Date.now() / 1000) + 2;
    const brief = await forgeToken({ tid: mallory.id, sub: 'brief', exp, jti: randomUUID() }, JWT_SECRET);
    const short = await liveClient(a!.url, brief);
    live.push(short);
    await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 300));
    expect(short.socket.connected).toBe(false);
    const timeless = await forgeToken({ tid: mallory.id, sub: 'forever', exp: null, jti: randomUUID() }, JWT_SECRET);
    await expect(liveClient(a!.url, timeless)).rejects.toThrow('unauthorized');
    expect(statusOf(await rawRequest(a!.url, 'POST', '/v1/holds', { token: timeless, body: { resourceIds: [room.id], ...slot(40) } }))).toBe(401);
  });
});

describe('connections from one address', () => {
  it('half-open connections are capped per address and a slowly sent head gets its 408 in about 10 s', async () => {
    const ATTACKER = attackerAddress();
    const [a] = stage.nodes;
    const port = Number(new URL(a!.url).port);
    const baseline = openFds(a!);
    // One slow head first: a byte a second, never finished.
    const slow = net.connect({ port, host: '127.0.0.1', localAddress: ATTACKER });
    const t0 = Date.now();
    let answer = '';
    const answered = new Promise<number>((resolve) => {
      slow.on('data', (d) => (answer += d));
      slow.on('close', () => resolve(Date.now() - t0));
      slow.on('error', () => {});
    });
    slow.write('GET /v1/resources HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => slow.writable && slow.write('X'), 1_000);
    // Then 1,000 connections that send nothing (four times the cap: on main, 20,000 of them took the node's descriptors).
    const sockets: net.Socket[] = [];
    let closedEarly = 0;
    for (let i = 0; i < 1_000; i++) {
      const s = net.connect({ port, host: '127.0.0.1', localAddress: ATTACKER });
      s.on('error', () => {});
      s.on('close', () => closedEarly++);
      sockets.push(s);
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 1_500));
    const open = sockets.length - closedEarly;
    expect(open, 'half-open connections left open').toBeLessThanOrEqual(256);
    expect(openFds(a!) - baseline, 'descriptors the node spent on them').toBeLessThan(300);
    // Everyone else still gets in.
    expect(statusOf(await rawRequest(a!.url, 'GET', '/v1/resources', { token: stage.victimTenant.key }))).toBe(200);
    const ms = await answered;
    clearInterval(drip);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(ms).toBeLessThan(12_500);
    for (const s of sockets) s.destroy();
  }, 30_000);
});

describe('upgrades', () => {
  it('a WebSocket upgrade reset mid-handshake, or for no gateway, never takes a node down or stays open', async () => {
    const ATTACKER = attackerAddress();
    const [a] = stage.nodes;
    const port = Number(new URL(a!.url).port);
    const upgrade = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
    // Reset while Socket.IO checks the handshake (its budget is counted in Redis), 50 times.
    await Promise.all(Array.from({ length: 50 }, () => new Promise<void>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1', localAddress: ATTACKER }, () => {
        s.write(upgrade('/socket.io/?EIO=4&transport=websocket'));
        setImmediate(() => s.resetAndDestroy());
      });
      s.on('error', () => {});
      s.on('close', () => resolve());
    })));
    // An upgrade no gateway takes is answered 404 and closed, not left open out of every deadline.
    const stray = await new Promise<{ text: string; closed: boolean }>((resolve) => {
      let text = '';
      const s = net.connect({ port, host: '127.0.0.1', localAddress: ATTACKER }, () => s.write(upgrade('/v1/resources')));
      s.on('data', (d) => (text += d));
      s.on('error', () => {});
      s.on('close', () => resolve({ text, closed: true }));
      setTimeout(() => resolve({ text, closed: false }), 3_000);
    });
    expect(stray.text).toMatch(/^HTTP\/1\.1 404/);
    expect(stray.closed).toBe(true);
  });

  it('one engine.io connection carries one socket: a second CONNECT packet is refused', async () => {
    const ATTACKER = attackerAddress();
    const [a] = stage.nodes;
    const token = await userToken();
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${a!.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, { localAddress: ATTACKER });
    const frames: string[] = [];
    let closedByServer = false;
    ws.on('message', (d) => frames.push(String(d)));
    ws.on('close', () => (closedByServer = true));
    await new Promise((r) => ws.once('open', r));
    const connect = `40${JSON.stringify({ token })}`;
    ws.send(connect);
    ws.send(connect);
    ws.send(connect);
    // Each extra CONNECT that reaches the server while the first is still being admitted is refused with a
    // CONNECT_ERROR; one that arrives after the first socket exists makes Socket.IO close the connection.
    // Either way the connection never carries a second socket. Wait until every extra CONNECT is accounted for.
    const deadline = Date.now() + 5_000;
    const refusals = () => frames.filter((f) => f.startsWith('44')).length;
    while (Date.now() < deadline && refusals() < 2 && !closedByServer) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    const ended = closedByServer;
    ws.close();
    expect(frames.filter((f) => f.startsWith('40{"sid"'))).toHaveLength(1);
    const refused = frames.filter((f) => f.startsWith('44'));
    expect(refused.length === 2 || ended).toBe(true);
    for (const f of refused) expect(JSON.parse(f.slice(2))).toMatchObject({ message: 'too-many-connections', data: { limit: 'sockets.connection' } });
  });
});

describe('sessions without a credential', () => {
  it('engine.io handshakes (sessions that live until they time out) count against the address budget', async () => {
    const ATTACKER = attackerAddress();
    const [a, b] = stage.nodes;
    const tries = await storm(300, 10, (i) => rawRequest((i % 2 ? b : a)!.url, 'GET', '/socket.io/?EIO=4&transport=polling', { localAddress: ATTACKER }));
    const opened = tries.filter((o) => statusOf(o) === 200).length;
    // RATE_LIMIT_IP 1200/min: 200 per 10-second window, on both nodes together.
    expect(opened).toBe(200);
    expect(tries.filter((o) => statusOf(o) === 403)).toHaveLength(100);
  });
});

describe('credential guessing from one address', () => {
  it('is throttled per address before any lookup: 429 naming the limit, on both nodes, while others are unaffected', async () => {
    const guesser = attackerAddress();
    const [a, b] = stage.nodes;
    const tries = await storm(300, 10, (i) => rawRequest((i % 2 ? b : a)!.url, 'GET', '/v1/resources', { token: `sw_${randomUUID().replace(/-/g, '')}${i}`, localAddress: guesser }));
    const unauthorized = tries.filter((o) => statusOf(o) === 401).length;
    // AUTH_FAILURES_PER_IP 30 a minute, shared by both nodes (plus the few in flight when it filled).
    expect(unauthorized).toBeGreaterThanOrEqual(30);
    expect(unauthorized).toBeLessThanOrEqual(40);
    const throttled = tries.filter((o) => statusOf(o) === 429);
    expect(throttled.length).toBe(300 - unauthorized);
    for (const o of throttled) expectNamedLimit(o, 429, ['auth-failures.ip']);
    // Even a valid credential is refused from there for the rest of the minute; from elsewhere it works.
    expectNamedLimit(await rawRequest(a!.url, 'GET', '/v1/resources', { token: mallory.key, localAddress: guesser }), 429, ['auth-failures.ip']);
    expect(statusOf(await rawRequest(b!.url, 'GET', '/v1/resources', { token: mallory.key }))).toBe(200);
  });
});
