/**
 * The y-websocket endpoint, `/yjs/<docName>?token=…`, on the node's HTTP
 * server next to Hono and Socket.IO. It speaks the stock protocol (0 sync,
 * 1 awareness, 3 query awareness) so an unmodified `WebsocketProvider` works;
 * every document update a client sends goes through the registry's checks,
 * every message through the connection's budgets (pacing.ts), and only the
 * connection's own presence is applied (presence.ts).
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import * as decoding from 'lib0/decoding';
import type { Awareness } from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import { WebSocketServer, WebSocket } from 'ws';
import type { Logger } from '../../core/ports';
import { canonicalDocName } from '../../../shared/doc-names';
import { kib, type YjsLimits } from './limits';
import { Pacer, type TokenBucket } from './pacing';
import { relayAwareness, type PresenceEntry } from './presence';
import { awarenessMessage, MESSAGE_AWARENESS, MESSAGE_QUERY_AWARENESS, MESSAGE_SYNC, syncMessage, toBytes } from './protocol';
import type { DocHandle, DocRegistry, Role } from './registry';

const PATH_PREFIX = '/yjs/';
const PING_INTERVAL_MS = 30_000;
const MAX_REJECTIONS = 20;
// How long a closing handshake may take before the socket is cut.
const CLOSE_GRACE_MS = 2_000;

/**
 * Who may open a document, or the close code that refuses them. A granted
 * connection may carry its session: `watch` calls back when the credential
 * is revoked or expires (the connection is then closed 4401), and `release`
 * runs once it is closed (the user's connection count).
 */
export type YjsAuthorization =
  | { userId: string; role: Role; watch?: (onEnd: () => void) => () => void; release?: () => void }
  | { close: 4401 | 4403 | 4404 | 4429; reason?: string };

/** Where an upgrade comes from: the peer address and the X-Forwarded-For header, for per-address limits. */
export interface YjsPeer {
  address: string | undefined;
  forwardedFor: string | string[] | undefined;
}

export interface YjsGatewayOptions {
  registry: DocRegistry;
  authorize(token: string | null, docName: string, peer: YjsPeer): Promise<YjsAuthorization>;
  log: Logger;
  /** Overrides of the registry's limits (limits.ts) for this gateway's connections. */
  limits?: Partial<YjsLimits>;
}

export interface YjsGateway {
  /** Closes every Yjs connection (1001) and waits until each has let go of its document. */
  disconnectAll(): Promise<void>;
  /** Stops accepting connections, disconnects everyone and stops the keep-alive. */
  close(): Promise<void>;
}

const REASONS: Record<number, string> = {
  1008: 'slow consumer', 4400: 'bad message', 4401: 'unauthorized', 4403: 'forbidden', 4404: 'unknown document', 4413: 'update too large', 4429: 'too many requests',
};

/** A message the protocol cannot make sense of. */
class BadMessage extends Error {}
/** The server, not the message, failed (storage, a closed registry): close with 1011, not 4400. */
class ServerFault extends Error {}

interface Conn {
  ws: WebSocket;
  docName: string;
  alive: boolean;
  /** Set when the registry revoked access or the client stopped reading: queued messages are dropped, not applied. */
  revoked: boolean;
  rejections: number;
  /** Sync step 1 requests so far: the first is the connection's sync, later ones are charged (see answer). */
  syncs: number;
  pacer: Pacer;
  handle: DocHandle | null;
  who: { userId: string; role: Role } | null;
  /** Messages are handled one at a time, in order. */
  chain: Promise<void>;
  /** Resolves once the connection closed and released its document. */
  finished: Promise<void>;
}

/** Serves Yjs documents over y-websocket on `server`, leaving every other upgrade alone. */
export function attachYjsGateway(server: http.Server, opts: YjsGatewayOptions): YjsGateway {
  const { registry, authorize, log } = opts;
  const limits: YjsLimits = { ...registry.limits, ...opts.limits };
  // Frames up to twice the update limit are read, so a slightly larger update is answered 4413 naming the
  // limit; ws cuts bigger ones (1009) before they are buffered whole.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 2 * limits.maxUpdateBytes });
  const conns = new Set<Conn>();
  let stopped = false;

  const send = (c: Conn, msg: Uint8Array) => {
    if (c.ws.readyState !== WebSocket.OPEN) return;
    if (c.ws.bufferedAmount > limits.maxUnreadBytes) return slowConsumer(c);
    c.ws.send(msg, (err) => err && log.debug({ err: err.message }, 'yjs: send failed'));
  };
  /** From now on nothing the client sent is applied, including what waits for its rate. */
  const drop = (c: Conn) => {
    c.revoked = true;
    c.pacer.close();
  };
  /** Pays `cost` from one of the connection's buckets (see Pacer.pay); false when its messages are to be dropped meanwhile. */
  const pay = async (c: Conn, bucket: TokenBucket, cost: number, need = cost) => (await c.pacer.pay(bucket, cost, need)) && !c.revoked;
  const closeWith = (c: Conn, code: number, reason = REASONS[code] ?? '') => {
    if (c.ws.readyState === WebSocket.OPEN || c.ws.readyState === WebSocket.CONNECTING) c.ws.close(code, reason.slice(0, 120));
  };
  /** A client that does not read would have the node hold everything sent to it: past the bound it is let go. */
  const slowConsumer = (c: Conn) => {
    log.info({ docName: c.docName, userId: c.who?.userId, unread: c.ws.bufferedAmount }, 'yjs: slow consumer closed');
    drop(c);
    // 1008, not a 44xx: a stock provider reconnects (and resyncs compactly) after it, as a client on a poor link should.
    closeWith(c, 1008, `slow consumer: over ${kib(limits.maxUnreadBytes)} unread`);
    // The close frame waits behind what the client does not read; cut the socket if it does not get through.
    setTimeout(() => c.ws.terminate(), CLOSE_GRACE_MS).unref();
  };

  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      // Nobody else can make sense of it either: do not leave it open.
      if (req.url?.startsWith(PATH_PREFIX)) socket.destroy();
      return;
    }
    // Socket.IO and anything else attached to this server handle their own paths.
    if (!url.pathname.startsWith(PATH_PREFIX)) return;
    if (stopped) return void socket.destroy();
    let docName = '';
    try {
      // Canonical once, here: authorization, the registry, the Redis channel, storage and revocation
      // all see one name per group booking, however the client spelled it.
      const raw = decodeURIComponent(url.pathname.slice(PATH_PREFIX.length));
      docName = canonicalDocName(raw) ?? raw;
    } catch {
      // stays '' → unknown document
    }
    const token = url.searchParams.get('token');
    const peer: YjsPeer = { address: req.socket.remoteAddress, forwardedFor: req.headers['x-forwarded-for'] };
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, docName, token, peer));
  };

  function serve(ws: WebSocket, docName: string, token: string | null, peer: YjsPeer): void {
    let markFinished!: () => void;
    const c: Conn = {
      ws, docName, alive: true, revoked: false, rejections: 0, syncs: 0, pacer: new Pacer(ws, limits),
      handle: null, who: null, chain: Promise.resolve(), finished: new Promise((r) => (markFinished = r)),
    };
    conns.add(c);
    let detach = () => {};
    // Accept first, then authorize: close codes (4401/4403/4404) only exist on an open WebSocket.
    const ready = start(c, token, peer).then(
      (d) => {
        if (d) detach = d;
        return d !== null;
      },
      (err) => {
        log.error({ err, docName }, 'yjs: connection setup failed');
        closeWith(c, 1011, 'internal error');
        return false;
      },
    );
    ws.on('pong', () => void (c.alive = true));
    ws.on('error', (err) => log.debug({ err: err.message, docName }, 'yjs: socket error'));
    ws.on('message', (data) => {
      const bytes = toBytes(data);
      c.pacer.received(bytes.byteLength);
      c.chain = c.chain
        .then(async () => {
          if (!(await ready) || c.revoked) return;
          // Every message costs a token; without one, reading pauses until there is.
          if (await pay(c, c.pacer.messages, 1)) await handleMessage(c, bytes);
        })
        .catch((err) => {
          if (err instanceof ServerFault) {
            log.error({ err: err.cause, docName }, 'yjs: update could not be applied');
            closeWith(c, 1011, 'internal error');
          } else {
            // Anything else was thrown while decoding what the client sent.
            log.info({ err: (err as Error).message, docName }, 'yjs: undecodable message');
            closeWith(c, 4400, 'bad message');
          }
        })
        .finally(() => c.pacer.handled(bytes.byteLength));
    });
    ws.on('close', () => {
      c.pacer.close();
      // Messages received before the close are still handled (and stored), unless they wait for the
      // connection's rate (Pacer.pay says why); then the document is let go.
      void ready
        .then(() => c.chain)
        .then(() => {
          detach();
          if (c.handle) registry.release(c.handle);
          conns.delete(c);
          markFinished();
        });
    });
  }

  /** Authorizes and holds the document; returns how to detach, or null when the connection was refused. */
  async function start(c: Conn, token: string | null, peer: YjsPeer): Promise<(() => void) | null> {
    const auth: YjsAuthorization = c.docName ? await authorize(token, c.docName, peer) : { close: 4404 };
    if ('close' in auth) {
      closeWith(c, auth.close, auth.reason);
      return null;
    }
    // The session ends with the connection; the connection ends with its credential.
    const unwatch = auth.watch?.(() => {
      drop(c);
      closeWith(c, 4401, 'the credential expired or was revoked');
    });
    const endSession = () => {
      unwatch?.();
      auth.release?.();
    };
    if (c.ws.readyState !== WebSocket.OPEN) {
      endSession();
      return null;
    }
    c.who = { userId: auth.userId, role: auth.role };
    const handle = await registry.acquire(c.docName, {
      userId: auth.userId,
      close: (code, reason) => {
        drop(c);
        closeWith(c, code, reason);
      },
    }).catch((err) => {
      endSession();
      throw err;
    });
    c.handle = handle;
    if (c.ws.readyState !== WebSocket.OPEN) return endSession;
    const { doc, awareness } = handle;
    // This client gets every change but its own: other local clients', the server's, other nodes'.
    const onUpdate = (update: Uint8Array, origin: unknown) => {
      if (origin !== handle) send(c, syncMessage((e) => syncProtocol.writeUpdate(e, update)));
    };
    doc.on('update', onUpdate);
    const relay = relayOf(awareness);
    relay.conns.add(c);
    send(c, syncMessage((e) => syncProtocol.writeSyncStep1(e, doc)));
    const states = [...awareness.getStates().keys()];
    if (states.length) send(c, awarenessMessage(awareness, states));
    return () => {
      endSession();
      doc.off('update', onUpdate);
      relay.conns.delete(c);
      if (relay.conns.size === 0) relay.close();
    };
  }

  /**
   * One awareness relay per document: each change is encoded once and sent to
   * every connection, the sender too (y-websocket clients count it as a sign
   * of life); renewals are batched (relayAwareness says how).
   */
  interface Relay {
    conns: Set<Conn>;
    close(): void;
  }
  const relays = new Map<Awareness, Relay>();
  function relayOf(awareness: Awareness): Relay {
    const existing = relays.get(awareness);
    if (existing) return existing;
    const conns = new Set<Conn>();
    const stop = relayAwareness(awareness, (ids) => {
      const msg = awarenessMessage(awareness, ids);
      for (const c of conns) send(c, msg);
    });
    const relay: Relay = {
      conns,
      close() {
        stop();
        relays.delete(awareness);
      },
    };
    relays.set(awareness, relay);
    return relay;
  }

  async function handleMessage(c: Conn, data: Uint8Array): Promise<void> {
    const handle = c.handle!;
    const who = c.who!;
    const decoder = decoding.createDecoder(data);
    switch (decoding.readVarUint(decoder)) {
      case MESSAGE_SYNC: {
        const kind = decoding.readVarUint(decoder);
        if (kind === syncProtocol.messageYjsSyncStep1) {
          const sv = decoding.readVarUint8Array(decoder);
          return answer(c, c.syncs++ > 0, () => syncMessage((e) => syncProtocol.writeSyncStep2(e, handle.doc, sv)));
        }
        if (kind !== syncProtocol.messageYjsSyncStep2 && kind !== syncProtocol.messageYjsUpdate) throw new BadMessage('unknown sync message');
        const update = decoding.readVarUint8Array(decoder);
        const most = Math.min(limits.maxUpdateBytes, c.pacer.bytes.capacity);
        if (update.byteLength > most) {
          return closeWith(c, 4413, `an update larger than ${most === limits.maxUpdateBytes ? kib(most) : `the connection's budget of ${kib(most)}`}`);
        }
        // Refused updates cost as much as accepted ones: judging them is the work.
        if (!(await pay(c, c.pacer.bytes, update.byteLength))) return;
        for (let wait = registry.sizeWait(handle, update.byteLength); wait > 0; wait = registry.sizeWait(handle, update.byteLength)) {
          if (!(await c.pacer.sleep(wait)) || c.revoked) return;
        }
        const verdict = await registry.applyClientUpdate(c.docName, update, { ...who, origin: handle }).catch((err) => {
          throw new ServerFault('applyClientUpdate failed', { cause: err });
        });
        if (verdict.ok) {
          // Storing runs behind (merged with what follows); the next message need not wait for it.
          verdict.stored.catch((err) => {
            log.error({ err, docName: c.docName }, 'yjs: update could not be stored');
            closeWith(c, 1011, 'internal error');
          });
          return;
        }
        log.info({ docName: c.docName, userId: who.userId, code: verdict.code, reason: verdict.reason }, 'yjs: client update rejected');
        if (verdict.code === 4413) return closeWith(c, 4413, verdict.reason);
        if (++c.rejections >= MAX_REJECTIONS) return closeWith(c, 4400, 'too many rejected updates');
        // Resync with the server's full state as step 2 only: a step 1 would make the client re-send what was refused.
        return send(c, syncMessage((e) => syncProtocol.writeSyncStep2(e, handle.doc)));
      }
      case MESSAGE_AWARENESS: {
        const update = decoding.readVarUint8Array(decoder);
        if (update.byteLength > limits.maxUpdateBytes) return closeWith(c, 4413, `an awareness message larger than ${kib(limits.maxUpdateBytes)}`);
        // Only the connection's own entry is applied; what it re-sends of others' is dropped (presence.ts says why).
        const pick = registry.pickPresence(handle, update);
        if ('tooLarge' in pick) return closeWith(c, 4413, `a presence state larger than ${kib(limits.maxPresenceBytes)}`);
        const entry = pick.entry;
        // Past its presence rate, a client's changes are coalesced: the latest is applied once a token is there.
        if (entry) c.pacer.coalesce(() => applyPresenceOf(c, entry));
        return;
      }
      case MESSAGE_QUERY_AWARENESS:
        return answer(c, true, () => awarenessMessage(handle.awareness, [...handle.awareness.getStates().keys()]));
      default:
        throw new BadMessage('unknown message type');
    }
  }

  /** Applies a connection's own presence entry; it may run from a timer, so nothing it throws may escape. */
  function applyPresenceOf(c: Conn, entry: PresenceEntry): void {
    try {
      if (c.handle) registry.applyPresence(c.handle, entry);
    } catch (err) {
      log.warn({ err, docName: c.docName }, 'yjs: presence could not be applied');
    }
  }

  /**
   * Sends an answer the client asked for. A `charged` one (a sync after the
   * first, a presence query) could pull the whole document out again and
   * again: it waits for a positive byte budget and costs its size (at most a
   * burst, so one answer never stalls the connection for minutes).
   */
  async function answer(c: Conn, charged: boolean, make: () => Uint8Array): Promise<void> {
    if (charged && !(await pay(c, c.pacer.bytes, 0, 1))) return;
    const msg = make();
    if (charged) c.pacer.bytes.take(Math.min(msg.byteLength, c.pacer.bytes.capacity));
    send(c, msg);
  }

  // Keep-alive: a connection that did not answer the previous ping is dead.
  const pinger = setInterval(() => {
    for (const c of conns) {
      if (!c.alive) {
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      if (c.ws.readyState === WebSocket.OPEN) c.ws.ping();
    }
  }, PING_INTERVAL_MS);
  pinger.unref();

  server.on('upgrade', onUpgrade);

  async function disconnectAll(): Promise<void> {
    const all = [...conns];
    for (const c of all) closeWith(c, 1001, 'going away');
    const cut = setTimeout(() => all.forEach((c) => c.ws.terminate()), CLOSE_GRACE_MS);
    await Promise.all(all.map((c) => c.finished));
    clearTimeout(cut);
  }

  return {
    disconnectAll,
    async close() {
      stopped = true;
      server.off('upgrade', onUpgrade);
      clearInterval(pinger);
      await disconnectAll();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}
