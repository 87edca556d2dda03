/**
 * The Yjs gateway on two nodes (real Postgres, real Redis), driven by the stock
 * y-websocket WebsocketProvider: convergence, awareness, late joiners, restart,
 * refused updates, server changes, revocation and the document lifecycle.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual as same } from 'node:util';
import * as encoding from 'lib0/encoding';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { RedisBus } from '../../server/bus/bus';
import type { Logger } from '../../server/core/ports';
import { Db } from '../../server/db/pool';
import { pgDocumentStore } from '../../server/db/store';
import { yjsRepository } from '../../server/db/repositories/yjs';
import { attachYjsGateway, type YjsAuthorization, type YjsGateway } from '../../server/realtime/yjs/gateway';
import { DocRegistry } from '../../server/realtime/yjs/registry';
import { checkChange, docName as groupDocName, docToJson, groupIdOf, validateDraft, type GroupDocJson } from '../../shared/group-doc';

interface LogLine { level: string; obj: unknown; msg?: string }
const logs: LogLine[] = [];
const logger = (level: string) => (obj: object | string, msg?: string) => {
  logs.push({ level, obj, msg });
  if (process.env.DEBUG_YJS) console.log(level, JSON.stringify(obj, (_k, v) => (v instanceof Error ? v.message : v)), msg ?? '');
};
const log: Logger = { info: logger('info'), warn: logger('warn'), error: logger('error'), debug: () => {} };

/** Polls until cond() holds, failing after `ms`. */
async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const known = new Set<string>();
/** Test authorization: 'org-x' / 'part-x' tokens, 'nobody' is no member, unknown documents are 4404. */
async function authorize(token: string | null, doc: string): Promise<YjsAuthorization> {
  const m = token ? /^(org|part)-(\w+)$/.exec(token) : null;
  if (!token || token === 'bad' || (!m && token !== 'nobody')) return { close: 4401 };
  if (!known.has(doc)) return { close: 4404 };
  if (!m) return { close: 4403 };
  return { userId: m[2]!, role: m[1] === 'org' ? 'organizer' : 'participant' };
}

interface Node {
  url: string;
  server: http.Server;
  db: Db;
  bus: RedisBus;
  registry: DocRegistry;
  gateway: YjsGateway;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function startNode(name: string): Promise<Node> {
  const db = new Db(inject('databaseUrl'), { max: 6 });
  const bus = new RedisBus(`yjs-test-${name}-${randomUUID()}`, inject('redisUrl'), log);
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const mount = () => {
    // Short idle time and frequent compaction so the tests exercise unloading and compaction too.
    const registry = new DocRegistry({ store: pgDocumentStore(db), bus, log, unloadAfterMs: 400, compactAfter: 10 });
    return { registry, gateway: attachYjsGateway(server, { registry, authorize, log }) };
  };
  const node: Node = {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/yjs`,
    server, db, bus, ...mount(),
    async restart() {
      await node.gateway.close();
      await node.registry.close();
      Object.assign(node, mount());
    },
    async stop() {
      await node.gateway.close();
      await node.registry.close();
      await bus.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await db.close();
    },
  };
  return node;
}

let A: Node;
let B: Node;
const providers: WebsocketProvider[] = [];
const sockets: WebSocket[] = [];

beforeAll(async () => {
  [A, B] = await Promise.all([startNode('a'), startNode('b')]);
});
afterEach(() => {
  for (const p of providers.splice(0)) {
    p.destroy();
    p.doc.destroy();
  }
  for (const s of sockets.splice(0)) s.terminate();
});
afterAll(async () => {
  await Promise.all([A?.stop(), B?.stop()]);
});

/** A new group document, created through `via`, with alice and bob as participants. */
async function newDoc(via: Node = A): Promise<string> {
  const name = groupDocName(randomUUID());
  known.add(name);
  await via.registry.create(name, (doc) => {
    const draft = doc.getMap('draft');
    draft.set('title', 'Team offsite');
    draft.set('start', null);
    draft.set('end', null);
    draft.set('resourceIds', new Y.Array<string>());
    draft.set('seats', null);
    const people = doc.getMap('participants');
    people.set('alice', new Y.Map<unknown>([['name', 'Alice']]));
    people.set('bob', new Y.Map<unknown>([['name', 'Bob']]));
    doc.getMap('server').set('status', 'draft');
  });
  return name;
}

/** A stock WebsocketProvider on a node. */
function connect(node: Node, doc: string, token: string) {
  const ydoc = new Y.Doc();
  const provider = new WebsocketProvider(node.url, doc, ydoc, { params: { token }, WebSocketPolyfill: WebSocket as never, disableBc: true, connect: true });
  providers.push(provider);
  const closes: number[] = [];
  provider.on('connection-close', (event) => event && closes.push(event.code));
  return { doc: ydoc, provider, closes, json: () => docToJson(ydoc), synced: () => waitFor(() => provider.synced, 5000, `${token} synced`) };
}

/** A raw WebSocket to the gateway, recording frames and the close code. */
async function raw(node: Node, doc: string, token?: string) {
  const ws = new WebSocket(`${node.url}/${doc}${token ? `?token=${token}` : ''}`);
  sockets.push(ws);
  const frames: Uint8Array[] = [];
  let closed: number | null = null;
  ws.on('message', (d: Buffer) => frames.push(new Uint8Array(d)));
  ws.on('close', (code) => (closed = code));
  ws.on('error', () => {});
  await new Promise((r) => ws.once('open', r));
  return { ws, frames, closedWith: () => closed };
}

const updateMessage = (update: Uint8Array) => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 0);
  encoding.writeVarUint(e, 2);
  encoding.writeVarUint8Array(e, update);
  return encoding.toUint8Array(e);
};

/** The document as Postgres holds it. */
async function stored(doc: string): Promise<{ json: GroupDocJson; rows: number }> {
  const { updates } = await yjsRepository.load(A.db.pool, doc);
  const y = new Y.Doc();
  updates.forEach((u) => Y.applyUpdate(y, u));
  return { json: docToJson(y), rows: updates.length };
}

const rejections = (doc: string, userId: string) =>
  logs.filter((l) => l.msg === 'yjs: client update rejected' && (l.obj as any).docName === doc && (l.obj as any).userId === userId).length;

const participant = (doc: Y.Doc, id: string) => doc.getMap('participants').get(id) as Y.Map<unknown>;

describe('group document rules', () => {
  it('judge only what a change touched, so a merged invalid state does not block unrelated edits', () => {
    const ids = Array.from({ length: 21 }, () => randomUUID());
    const before: GroupDocJson = { draft: { title: 'T', resourceIds: ids }, participants: { bob: { name: 'Bob' } }, notes: '', server: { status: 'draft' } };
    const bob = { userId: 'bob', role: 'participant' } as const;
    const alice = { userId: 'alice', role: 'organizer' } as const;
    expect(checkChange(before, { ...before, notes: 'hi' }, bob)).toEqual({ ok: true });
    expect(checkChange(before, { ...before, participants: { bob: { name: 'Bob', status: 'yes' } } }, bob)).toEqual({ ok: true });
    expect(checkChange(before, { ...before, participants: { bob: { name: 'Bob' }, eve: { name: 'Eve' } } }, bob)).toMatchObject({ ok: false, code: 4403 });
    expect(checkChange(before, { ...before, draft: { ...before.draft, title: 'U' } }, alice)).toEqual({ ok: true });
    expect(checkChange(before, { ...before, draft: { ...before.draft, resourceIds: [...ids, randomUUID()] } }, alice)).toMatchObject({ ok: false, code: 4400 });
    expect(checkChange(before, { ...before, draft: { ...before.draft, extra: 1 } }, alice)).toMatchObject({ ok: false, code: 4400 });
    expect(checkChange(before, { ...before, draft: { title: 'U', resourceIds: ids.slice(1) } }, alice)).toEqual({ ok: true });
    expect(checkChange(before, { ...before, server: { status: 'held' } }, alice)).toMatchObject({ ok: false, code: 4403 });
    expect(validateDraft({ draft: { title: 'T', start: '2027-01-01T10:00:00', end: null }, participants: {}, notes: '' })).toMatchObject({ ok: false });
    expect(groupIdOf(groupDocName(ids[0]!))).toBe(ids[0]);
    expect(groupIdOf('other:' + ids[0])).toBeNull();
  });
});

describe('yjs gateway across two nodes', () => {
  it('(1) concurrent edits on two nodes converge, in every client and in Postgres', async () => {
    const doc = await newDoc();
    const a = connect(A, doc, 'org-alice');
    const c = connect(B, doc, 'org-carol');
    await Promise.all([a.synced(), c.synced()]);
    const room = randomUUID();
    for (let i = 0; i < 15; i++) {
      a.doc.transact(() => {
        a.doc.getMap('draft').set('title', `Offsite ${i}`);
        a.doc.getMap('draft').set('start', '2027-03-01T09:00:00Z');
        a.doc.getText('notes').insert(0, `a${i} `);
        participant(a.doc, 'alice').set('status', `going ${i}`);
      });
      c.doc.transact(() => {
        c.doc.getMap('draft').set('end', '2027-03-01T17:00:00+01:00');
        c.doc.getText('notes').insert(c.doc.getText('notes').length, ` c${i}`);
        if (i === 3) c.doc.getMap('participants').set('dave', new Y.Map<unknown>([['name', 'Dave'], ['email', 'dave@example.com']]));
        if (i === 5) (c.doc.getMap('draft').get('resourceIds') as Y.Array<string>).push([room]);
      });
    }
    await waitFor(() => same(a.json(), c.json()) && a.json().notes.includes('c14') && c.json().notes.includes('a14'), 5000, 'convergence');
    const json = a.json();
    expect(json.draft).toMatchObject({ start: '2027-03-01T09:00:00Z', end: '2027-03-01T17:00:00+01:00', resourceIds: [room] });
    expect(json.participants.dave).toEqual({ name: 'Dave', email: 'dave@example.com' });
    expect(c.json()).toEqual(json);
    await waitFor(async () => same((await stored(doc)).json, json), 5000, 'Postgres to converge');
    expect(await A.registry.snapshot(doc)).toEqual(json);
    expect(await B.registry.snapshot(doc)).toEqual(json);
  });

  it('(2) awareness set on node A is seen on node B, and leaves with the connection', async () => {
    const doc = await newDoc();
    const a = connect(A, doc, 'org-alice');
    await a.synced();
    a.provider.awareness.setLocalStateField('user', { name: 'Alice', color: '#f00' });
    // B loads the document after A's state was set: the awareness query on load brings it over.
    const b = connect(B, doc, 'part-bob');
    await b.synced();
    const seesAlice = () => [...b.provider.awareness.getStates().values()].some((s) => s.user?.name === 'Alice');
    await waitFor(seesAlice, 5000, 'alice awareness on B');
    a.provider.awareness.setLocalStateField('user', { name: 'Alice A.', color: '#f00' });
    await waitFor(() => [...b.provider.awareness.getStates().values()].some((s) => s.user?.name === 'Alice A.'), 5000, 'awareness change on B');
    // Cut A's socket without a goodbye: the server itself removes alice's state and tells node B.
    a.provider.shouldConnect = false;
    (a.provider.ws as unknown as WebSocket).terminate();
    await waitFor(() => !b.provider.awareness.getStates().has(a.doc.clientID), 5000, 'alice awareness removed on B');
  });

  it('(3) providers joining later, on either node, get everything', async () => {
    const doc = await newDoc();
    const a = connect(A, doc, 'org-alice');
    const b = connect(B, doc, 'part-bob');
    await Promise.all([a.synced(), b.synced()]);
    a.doc.getMap('draft').set('seats', 12);
    b.doc.getText('notes').insert(0, 'Bob brings snacks');
    participant(b.doc, 'bob').set('status', 'yes');
    await waitFor(() => a.json().notes === 'Bob brings snacks' && b.json().draft.seats === 12 && a.json().participants.bob?.status === 'yes');
    const late = [connect(B, doc, 'org-carol'), connect(A, doc, 'part-erin')];
    await Promise.all(late.map((l) => l.synced()));
    for (const l of late) expect(l.json()).toEqual(a.json());
  });

  it('(4) after both nodes restart, a new provider sees all content (compacted in Postgres)', async () => {
    const doc = await newDoc();
    const a = connect(A, doc, 'org-alice');
    const b = connect(B, doc, 'org-carol');
    await Promise.all([a.synced(), b.synced()]);
    for (let i = 0; i < 12; i++) {
      a.doc.getText('notes').insert(0, `[a${i}]`);
      b.doc.getMap('draft').set('title', `Title ${i}`);
    }
    await waitFor(() => same(a.json(), b.json()) && a.json().draft.title === 'Title 11' && b.json().notes.includes('[a11]'));
    const expected = a.json();
    for (const p of providers.splice(0)) {
      p.destroy();
      p.doc.destroy();
    }
    await A.restart();
    await B.restart();
    expect(await stored(doc)).toEqual({ json: expected, rows: 1 });
    const fresh = connect(B, doc, 'part-bob');
    await fresh.synced();
    expect(fresh.json()).toEqual(expected);
  });

  it('(5) refused updates are neither stored nor relayed, and the nodes keep serving', async () => {
    const doc = await newDoc();
    const watch = connect(B, doc, 'org-carol');
    await watch.synced();

    // An organizer writing the server map.
    const alice = connect(A, doc, 'org-alice');
    await alice.synced();
    alice.doc.getMap('server').set('status', 'confirmed');
    await waitFor(() => rejections(doc, 'alice') === 1, 5000, 'server map write refused');

    // A participant editing someone else's entry, then (on a fresh connection) the draft.
    const bob1 = connect(A, doc, 'part-bob');
    await bob1.synced();
    participant(bob1.doc, 'alice').set('name', 'Mallory');
    await waitFor(() => rejections(doc, 'bob') === 1, 5000, 'foreign entry edit refused');
    const bob2 = connect(B, doc, 'part-bob');
    await bob2.synced();
    bob2.doc.getMap('draft').set('title', 'Hijacked');
    await waitFor(() => rejections(doc, 'bob') === 2, 5000, 'draft edit refused');
    // An organizer making the draft invalid.
    const dan = connect(A, doc, 'org-dan');
    await dan.synced();
    dan.doc.getMap('draft').set('seats', 0);
    await waitFor(() => rejections(doc, 'dan') === 1, 5000, 'invalid draft refused');
    // A refused client is resynced (sync step 2), not closed.
    expect(dan.provider.wsconnected).toBe(true);
    // An update whose dependency was never sent: the checks cannot see it, so it is refused.
    const sneaky = new Y.Doc();
    (await yjsRepository.load(A.db.pool, doc)).updates.forEach((u) => Y.applyUpdate(sneaky, u));
    const parts: Uint8Array[] = [];
    sneaky.on('update', (u: Uint8Array) => void parts.push(u));
    sneaky.getText('notes').insert(0, 'first');
    sneaky.getText('notes').insert(5, ' second');
    const r0 = await raw(B, doc, 'org-yan');
    r0.ws.send(updateMessage(parts[1]!));
    await waitFor(() => rejections(doc, 'yan') === 1, 5000, 'update with a missing dependency refused');

    // Oversized update → 4413; garbage frame → 4400; garbage update → refused (resynced), then 20 of them → 4400.
    const big = new Y.Doc();
    big.getText('notes').insert(0, 'x'.repeat(70 * 1024));
    const r1 = await raw(A, doc, 'org-alice');
    r1.ws.send(updateMessage(Y.encodeStateAsUpdate(big)));
    await waitFor(() => r1.closedWith() === 4413, 5000, 'close 4413');
    const r2 = await raw(B, doc, 'org-alice');
    r2.ws.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    await waitFor(() => r2.closedWith() === 4400, 5000, 'close 4400 on garbage');
    const r3 = await raw(A, doc, 'org-zed');
    r3.ws.send(updateMessage(new Uint8Array([7, 7, 7, 7, 250, 1, 2, 3])));
    await waitFor(() => r3.frames.some((f) => f[0] === 0 && f[1] === 1), 5000, 'resync after refused update');
    expect(r3.closedWith()).toBeNull();
    for (let i = 0; i < 19; i++) r3.ws.send(updateMessage(new Uint8Array([7, 7, 7, 7, 250, i])));
    await waitFor(() => r3.closedWith() === 4400, 5000, 'close 4400 after 20 refusals');

    // Refused at the door.
    const codes = await Promise.all([
      raw(A, doc).then(async (r) => (await waitFor(() => r.closedWith() !== null), r.closedWith())),
      raw(B, doc, 'bad').then(async (r) => (await waitFor(() => r.closedWith() !== null), r.closedWith())),
      raw(A, doc, 'nobody').then(async (r) => (await waitFor(() => r.closedWith() !== null), r.closedWith())),
      raw(B, groupDocName(randomUUID()), 'org-alice').then(async (r) => (await waitFor(() => r.closedWith() !== null), r.closedWith())),
    ]);
    expect(codes).toEqual([4401, 4401, 4403, 4404]);

    // Still serving: allowed edits from both nodes flow, including a participant's own entry and notes.
    const bob3 = connect(A, doc, 'part-bob');
    await bob3.synced();
    participant(bob3.doc, 'bob').set('status', 'maybe');
    bob3.doc.getText('notes').insert(0, 'ok from bob');
    const fresh = connect(B, doc, 'org-alice');
    await fresh.synced();
    fresh.doc.getMap('draft').set('seats', 3);
    await waitFor(() => watch.json().notes === 'ok from bob' && watch.json().participants.bob?.status === 'maybe' && watch.json().draft.seats === 3, 5000, 'allowed edits');

    // The watcher saw the edits; the other node's copy and Postgres get them a moment later.
    const everywhere = async () => [watch.json(), (await stored(doc)).json, await A.registry.snapshot(doc), await B.registry.snapshot(doc)];
    await waitFor(async () => (await everywhere()).every((j) => j.draft.seats === 3 && j.notes === 'ok from bob'), 5000, 'edits on both nodes and in Postgres');
    for (const json of await everywhere()) {
      expect(json.server).toEqual({ status: 'draft' });
      expect(json.participants.alice).toEqual({ name: 'Alice' });
      expect(json.draft.title).toBe('Team offsite');
      expect(json.draft.seats).toBe(3);
      expect(json.notes).toBe('ok from bob');
    }
  });

  it('(6) a server change on node A reaches a provider on node B', async () => {
    const doc = await newDoc(B);
    const b = connect(B, doc, 'part-bob');
    await b.synced();
    const holdId = randomUUID();
    // Node A does not hold the document: change loads it, applies, stores and publishes.
    await A.registry.change(doc, (d) => {
      d.getMap('server').set('status', 'held');
      d.getMap('server').set('holdId', holdId);
    });
    await waitFor(() => b.json().server.status === 'held', 5000, 'server.status on B');
    expect(b.json().server.holdId).toBe(holdId);
    expect((await stored(doc)).json.server).toEqual({ status: 'held', holdId });
  });

  it('(7) revoke on node A closes that user\'s connection on node B only', async () => {
    const doc = await newDoc();
    const bob = connect(B, doc, 'part-bob');
    const carol = connect(B, doc, 'org-carol');
    await Promise.all([bob.synced(), carol.synced()]);
    await A.registry.revoke(doc, 'bob');
    await waitFor(() => bob.closes.includes(4403), 5000, 'bob closed with 4403');
    expect(carol.closes).toEqual([]);
    expect(carol.provider.wsconnected).toBe(true);
  });

  it('(8) concurrent acquires of one document load it once; a failed load is retried', async () => {
    const doc = await newDoc(B);
    const load = vi.spyOn(yjsRepository, 'load');
    try {
      const handles = await Promise.all(Array.from({ length: 8 }, () => A.registry.acquire(doc)));
      expect(load.mock.calls.filter((c) => c[1] === doc)).toHaveLength(1);
      expect(new Set(handles.map((h) => h.doc)).size).toBe(1);
      expect(handles[0]!.doc.getMap('draft').get('title')).toBe('Team offsite');
      handles.forEach((h) => A.registry.release(h));
      // Idle, it unloads (and unsubscribes) after unloadAfterMs.
      await waitFor(() => A.registry.state(doc) === null, 5000, 'unload');

      load.mockRejectedValueOnce(new Error('database down'));
      await expect(A.registry.acquire(doc)).rejects.toThrow('database down');
      expect(A.registry.state(doc)).toBeNull();
      const h = await A.registry.acquire(doc);
      expect(h.doc.getMap('draft').get('title')).toBe('Team offsite');

      // Nothing unloads while a save is pending, however long it takes.
      const original = yjsRepository.append;
      let finish!: () => void;
      const slow = new Promise<void>((r) => (finish = r));
      const append = vi.spyOn(yjsRepository, 'append').mockImplementation(async (...args) => (await slow, original(...args)));
      const saving = A.registry.change(doc, (d) => d.getMap('server').set('status', 'held'));
      A.registry.release(h);
      await new Promise((r) => setTimeout(r, 900)); // over twice unloadAfterMs
      expect(A.registry.state(doc)).toBe('active');
      finish();
      await saving;
      append.mockRestore();
      await waitFor(() => A.registry.state(doc) === null, 5000, 'unload after the save');
      expect((await stored(doc)).json.server.status).toBe('held');
    } finally {
      load.mockRestore();
    }
  });

  it('(9) compaction while both nodes append keeps every update', async () => {
    const doc = await newDoc();
    const a = connect(A, doc, 'org-alice');
    const b = connect(B, doc, 'org-carol');
    await Promise.all([a.synced(), b.synced()]);
    for (let i = 0; i < 60; i++) {
      a.doc.getText('notes').insert(a.doc.getText('notes').length, `a${i};`);
      b.doc.getText('notes').insert(0, `b${i};`);
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 10));
    }
    const complete = (notes: string) => Array.from({ length: 60 }, (_, i) => [`a${i};`, `b${i};`]).flat().every((s) => notes.includes(s));
    await waitFor(() => complete(a.json().notes) && a.json().notes === b.json().notes, 10_000, 'convergence');
    await waitFor(async () => (await stored(doc)).json.notes === a.json().notes, 5000, 'Postgres complete');
    const { rows } = await stored(doc);
    expect(rows).toBeLessThan(60);
  });

  it('(10) a node that missed a published update fills the gap from Postgres', async () => {
    const doc = await newDoc();
    const a = connect(A, doc, 'org-alice');
    const b = connect(B, doc, 'org-carol');
    await Promise.all([a.synced(), b.synced()]);
    const original = B.bus.publish.bind(B.bus);
    let dropped = 0;
    const publish = vi.spyOn(B.bus, 'publish').mockImplementation(async (channel, type, payload) => {
      // Redis loses exactly one update of this document.
      if (dropped === 0 && type === 'update' && channel === `yjs:${doc}`) return void dropped++;
      return original(channel, type, payload);
    });
    try {
      b.doc.getText('notes').insert(0, 'lost ');
      await waitFor(() => dropped === 1, 5000, 'the dropped publish');
      b.doc.getText('notes').insert(5, 'found');
      await waitFor(() => a.json().notes === 'lost found', 5000, 'node A to fill the gap');
    } finally {
      publish.mockRestore();
    }
  });

  it('(11) an update published while a node reads Postgres is not lost (subscribe first, then load)', async () => {
    const doc = await newDoc();
    const a = connect(A, doc, 'org-alice');
    await a.synced();
    const original = yjsRepository.load;
    let read = false;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const load = vi.spyOn(yjsRepository, 'load').mockImplementation(async (q, name) => {
      const rows = await original(q, name);
      if (name === doc && !read) {
        read = true;
        await gate;
      }
      return rows;
    });
    try {
      const acquiring = B.registry.acquire(doc);
      await waitFor(() => read, 5000, 'node B to read Postgres');
      // Node A stores and publishes an update after B's read, before B is done loading.
      const published = vi.spyOn(A.bus, 'publish');
      a.doc.getText('notes').insert(0, 'during load');
      await waitFor(() => published.mock.calls.some(([, type]) => type === 'update'), 5000, 'the publish');
      await published.mock.results.find((r, i) => published.mock.calls[i]![1] === 'update')!.value;
      published.mockRestore();
      release();
      const h = await acquiring;
      await waitFor(() => h.doc.getText('notes').toString() === 'during load', 2000, 'the update published during the load');
      B.registry.release(h);
    } finally {
      release();
      load.mockRestore();
    }
  });

  it('logged no unexpected errors', () => {
    expect(logs.filter((l) => l.level === 'error' && !/failed to load/.test(l.msg ?? ''))).toEqual([]);
  });
});
