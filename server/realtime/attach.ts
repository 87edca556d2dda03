/**
 * Wires the live side of a node onto its HTTP server: Socket.IO with the
 * feed's fan-out, and the Yjs gateway over the document registry.
 */
import { ServerResponse, type IncomingMessage, type Server } from 'node:http';
import { Socket as NetSocket } from 'node:net';
import type { Socket } from 'socket.io';
import type { Bus } from '../bus/bus';
import type { Limits } from '../core/limits';
import type { Logger } from '../core/ports';
import { DomainError } from '../core/errors';
import { clientAddress } from '../core/services/protection';
import type { GroupService } from '../core/services/groups';
import type { TenantService } from '../core/services/tenants';
import type { FeedEvent } from '../core/events';
import type { Services } from '../core/services';
import { createFanout } from './fanout';
import { attachSocketGateway } from './socket';
import { admitLiveCredential } from './session';
import { attachYjsGateway, type YjsAuthorization, type YjsPeer } from './yjs/gateway';
import type { DocRegistry } from './yjs/registry';

export interface RealtimeOptions {
  server: Server;
  bus: Bus;
  services: Services & { groups: GroupService; tenants: TenantService };
  limits: Limits;
  docs: DocRegistry;
  log: Logger;
  /** Called on every node with each batch of the feed, before its events go to the node's sockets. */
  onFeed?: (events: FeedEvent[]) => void;
}

export interface Realtime {
  /** Hands a numbered batch of the feed to every subscriber on every node, and to group documents (the feed decoder calls it). */
  publish(events: FeedEvent[]): Promise<void>;
  /** Closes every live connection (Socket.IO and Yjs). */
  disconnectAll(): Promise<void>;
  /** Saves every document and releases the gateway's resources. */
  close(): Promise<void>;
}

/** Attaches Socket.IO, the fan-out and the Yjs gateway. */
export function attachRealtime(opts: RealtimeOptions): Realtime {
  const { server, bus, services, docs, log, limits } = opts;
  const io = attachSocketGateway(server, { bus, services, log, limits });
  io.on('connection', forgetHandshake);
  io.engine.use(forgetUpgradeResponse);
  const fanout = createFanout(io, bus, log, opts.onFeed);
  const yjs = attachYjsGateway(server, {
    registry: docs,
    authorize: (token, docName, peer) => authorizeYjs(opts, token, docName, peer),
    log,
  });
  return {
    async publish(events) {
      await fanout.emit(events);
      await services.groups.onEvents(events);
    },
    async disconnectAll() {
      // Only this node's sockets: through the Redis adapter, io.disconnectSockets() would close every node's.
      io.local.disconnectSockets(true);
      await yjs.disconnectAll();
    },
    async close() {
      await fanout.close();
      await yjs.close();
      await docs.close();
      io.engine.close();
    },
  };
}

const NO_HEADERS = Object.freeze({});
const NO_QUERY = Object.freeze({});

/**
 * A connected socket lets go of what its handshake brought. Socket.IO keeps
 * the CONNECT packet's `auth` as `handshake.auth` for the socket's life, and
 * engine.io the upgrade request as `conn.request` (Socket.IO reads it when it
 * builds a socket's `handshake`); the gateway's handshake check (socket.ts's
 * middleware) is the only reader of the token and of the headers, and from
 * then on the socket acts as its principal (`socket.data`), whose end
 * (revoked or expired) is watched by principal. Dropping them saves the token
 * string (about 350 bytes) and the request with its headers per idle
 * connection (PRODUCT.md P6), and keeps bearer credentials out of the heap
 * (and of heap snapshots) once they have been checked. A later CONNECT on the
 * same connection brings its own `auth` (and is refused: one socket per
 * connection).
 */
function forgetHandshake(socket: Socket): void {
  const auth = socket.handshake.auth as Record<string, unknown> | undefined;
  if (auth && typeof auth === 'object' && 'token' in auth) delete auth.token;
  // Socket.IO builds a handshake without a request too (empty headers and query).
  (socket.conn as { request?: unknown }).request = undefined;
  socket.handshake.headers = NO_HEADERS;
  socket.handshake.query = NO_QUERY;
}

/**
 * engine.io answers an upgrade with a stand-in response that listens for the
 * TCP socket's close (for middlewares that want to know when a response
 * ends: there are none here), which keeps the upgrade request for the
 * connection's life. Its listener is the last on the socket when the
 * middlewares run; it is recognized by its text, so that an engine.io that
 * does otherwise is left alone.
 */
function forgetUpgradeResponse(_req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
  const socket = res instanceof ServerResponse ? null : (res as { socket?: unknown }).socket;
  if (socket instanceof NetSocket) {
    const listeners = socket.rawListeners('close') as ((...a: unknown[]) => void)[];
    const last = listeners[listeners.length - 1] as ((...a: unknown[]) => void) & { listener?: unknown };
    if (typeof last?.listener === 'function' && String(last.listener) === '() => this.emit("close")') socket.removeListener('close', last);
  }
  next();
}

/**
 * A Yjs connection passes the same protection as a Socket.IO handshake: the
 * address's failed authentications and budget, the credential's budget and
 * live connections, then document membership; the connection then lives as
 * long as its credential. Refusals close 4429 (limits) or 4401.
 */
async function authorizeYjs(opts: RealtimeOptions, token: string | null, docName: string, peer: YjsPeer): Promise<YjsAuthorization> {
  const { services, limits } = opts;
  const ip = clientAddress(peer.address, peer.forwardedFor, limits.trustProxy);
  let leave: (() => void) | null = null;
  try {
    const admitted = await admitLiveCredential(services.credentials, services.protection, ip, token || null, { chargeAddress: true });
    const principal = admitted.principal;
    leave = admitted.leave;
    const granted = await services.groups.authorizeDoc(principal, docName);
    if ('close' in granted) {
      leave();
      return granted;
    }
    return { ...granted, watch: (onEnd) => services.credentials.watch(principal, onEnd), release: leave };
  } catch (err) {
    leave?.();
    if (err instanceof DomainError && err.code === 'unauthorized') return { close: 4401 };
    if (err instanceof DomainError && err.status === 429) return { close: 4429, reason: err.message };
    throw err;
  }
}
