/**
 * The Socket.IO gateway: tenant-scoped rooms per resource, subscribe with a
 * snapshot, resync from the event table, and hold commands that call the same
 * core services as REST and answer `{ok, data}` or `{ok: false, error}`.
 */
import type { Server as HttpServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Command, Redis } from 'ioredis';
import { Server, type Socket } from 'socket.io';
import type { z } from 'zod';
import { HoldIdInput, ResyncInput, SubscribeInput, UnsubscribeInput, type ClientToServerEvents, type ServerToClientEvents } from '../../shared/live';
import { RedisBus, type Bus } from '../bus/bus';
import type { Release } from '../core/admission';
import type { Command as CoreCommand } from '../core/commands';
import { DomainError } from '../core/errors';
import type { Limits } from '../core/limits';
import type { Logger } from '../core/ports';
import { checkKey } from '../core/pipeline';
import type { Services } from '../core/services';
import type { CredentialService, CredentialWatcher, SessionEnd } from '../core/services/credentials';
import { clientAddress, SLOTS_PER_REQUEST, type ProtectionService, type RequestClass } from '../core/services/protection';
import type { TenantPrincipal } from '../core/types';
import { publicData } from './public-view';
import { admitLiveSession } from './session';

/** What every connection's session shares: the gateway's own state and services. */
interface Gateway {
  /** Engine.io connections with a socket of the default namespace, or a handshake for one under way (null). */
  carrying: WeakMap<object, LiveSession | null>;
  credentials: CredentialService;
  protection: ProtectionService;
  log: Logger;
}

/**
 * What the gateway keeps of one connection (its socket's `data`): fields
 * only. The commands, the disconnect and the credential's end are handled by
 * functions shared by every connection, which find this through the socket:
 * an idle connection's memory is the node's (PRODUCT.md P6), and each closure
 * made per connection cost it (with tsx's keepNames, a named one about 300
 * bytes).
 */
class LiveSession implements CredentialWatcher {
  /** Resources of subscribes still under way, counted against the cap with the rooms already joined: only while there are some. */
  joining: Map<string, number> | null = null;
  private ended = false;

  constructor(
    readonly principal: TenantPrincipal,
    readonly ip: string,
    private readonly socket: LiveSocket,
    private readonly gw: Gateway,
  ) {}

  /** The connection ends with its credential: revoked (on any node) or expired. */
  credentialEnded(why: SessionEnd): void {
    this.gw.log.info({ why }, 'socket.io: credential ended; disconnecting');
    this.socket.disconnect(true);
  }

  /** Ends this connection's count against its user's cap and its credential watch (once). */
  done(): void {
    if (this.ended) return;
    this.ended = true;
    this.gw.carrying.delete(this.socket.conn);
    this.gw.protection.closeSession(this.principal);
    this.gw.credentials.unfollow(this.principal, this);
  }
}
type SocketData = LiveSession;
type LiveSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
export type LiveServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/**
 * The rooms of one resource of one tenant. The tenant's own key sees events
 * whole; end users (user tokens) watch the public room, whose events carry no
 * other customer's details (see publicData in fanout.ts).
 */
export const roomOf = (tenantId: string, resourceId: string, audience: 'tenant' | 'public' = 'public') =>
  `t:${tenantId}:r:${resourceId}${audience === 'tenant' ? ':all' : ''}`;
const audienceOf = (p: TenantPrincipal) => (p.kind === 'tenant' ? 'tenant' : 'public');

const ms = (iso: string) => Date.parse(iso);

/** Splits the optional idempotencyKey off a command payload. */
function splitKey(payload: unknown): { key?: string; body: unknown } {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return { body: payload };
  const { idempotencyKey, ...body } = payload as Record<string, unknown>;
  if (idempotencyKey === undefined) return { body };
  if (typeof idempotencyKey !== 'string') throw new DomainError('validation-failed', 'idempotencyKey must be a string', { errors: [{ path: 'idempotencyKey', message: 'must be a string' }] });
  checkKey(idempotencyKey, 'idempotencyKey');
  return { key: idempotencyKey, body };
}

export interface SocketGatewayOptions {
  bus: Bus;
  services: Services;
  log: Logger;
  limits: Limits;
}

/** Resources one connection may watch at once (the cap on `subscribe` ids, summed over its subscriptions). */
export const MAX_SUBSCRIBED_RESOURCES = 100;
/** A connection whose unsent output passes this (it does not read) is cut off: its memory is the node's. */
export const MAX_SOCKET_BACKLOG_BYTES = 4 * 1024 * 1024;
const MAX_SOCKET_BACKLOG_PACKETS = 2_000;

/** A handshake refusal as Socket.IO carries it: `connect_error` with the code as message and the problem as data. */
function refusal(err: unknown): Error & { data?: unknown } {
  const e: Error & { data?: unknown } = new Error(err instanceof DomainError ? err.code : 'unavailable');
  if (err instanceof DomainError) e.data = err.toProblem();
  return e;
}

/** Attaches Socket.IO to the HTTP server (same port as the API). */
export function attachSocketGateway(server: HttpServer, opts: SocketGatewayOptions): LiveServer {
  const { bus, services, log, limits } = opts;
  const { protection, pipeline, commands } = services;
  const parse = <T extends z.ZodType>(schema: T, payload: unknown) => pipeline.parse(schema, payload);
  const io: LiveServer = new Server(server, {
    path: '/socket.io',
    // Other upgrades on this port belong to the Yjs gateway: leave them alone.
    destroyUpgrade: false,
    cors: { origin: '*' },
    maxHttpBufferSize: 64 * 1024,
    // Every engine.io handshake (before any credential is seen) counts against its address's budget:
    // sessions cost memory until they time out, so they must not be free to open.
    allowRequest: (req, callback) => {
      const ip = clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], limits.trustProxy);
      protection.admitAddress(ip, 'api').then(() => callback(null, true), () => callback('rate-limited', false));
    },
  });
  if (bus instanceof RedisBus) io.adapter(createAdapter(guarded(bus.pub.duplicate(), log), guarded(bus.sub.duplicate(), log)));

  // Engine.io connections with a socket of the default namespace, or a handshake for one under way: one each
  // (gw.carrying). Socket.IO would take any number of CONNECT packets on one connection, each a socket of its own.
  const gw: Gateway = { carrying: new WeakMap(), credentials: services.credentials, protection, log };
  const { carrying } = gw;
  /** A handshake refused by a later middleware, or a connection that never completes, gives its slot back. */
  function onConnClose(this: object): void {
    carrying.get(this)?.done();
  }

  io.use(async (socket, next) => {
    const conn = socket.conn;
    if (carrying.has(conn)) {
      return next(refusal(new DomainError('too-many-connections', 'one connection carries one socket', { limit: 'sockets.connection', max: 1 })));
    }
    carrying.set(conn, null);
    const ip = clientAddress(socket.handshake.address, socket.handshake.headers['x-forwarded-for'], limits.trustProxy);
    let session: LiveSession | null = null;
    try {
      const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
      // The engine.io handshake already charged the address (allowRequest); a handshake without a token string counts as a failure.
      const principal = await admitLiveSession(services.credentials, protection, ip, typeof token === 'string' ? token : '', { chargeAddress: false });
      session = new LiveSession(principal, ip, socket, gw);
      carrying.set(conn, session);
      services.credentials.follow(principal, session);
      socket.data = session;
      // The client may have gone during the checks: its close has passed, and no disconnect will come.
      if (conn.readyState !== 'open') {
        session.done();
        return next(new Error('closed'));
      }
      conn.on('close', onConnClose);
      next();
    } catch (err) {
      if (session) session.done();
      else carrying.delete(conn);
      next(refusal(err));
    }
  });

  const expired = () => new DomainError('unauthorized', 'the credential of this connection has expired or was revoked; reconnect with a new one');

  /**
   * Runs one command of a connection: checks the credential is still good,
   * admits it (this connection's commands in progress, the budgets of its
   * address and credential, its user's and tenant's work in progress),
   * validates, runs, acks; never lets an error escape.
   */
  async function runCommand(socket: LiveSocket, event: keyof ClientToServerEvents, c: CommandSpec, payload: unknown, cb: unknown): Promise<void> {
    const ack = typeof cb === 'function' ? (cb as (a: unknown) => void) : () => {};
    const { principal: p, ip } = socket.data;
    let turn: Release | null = null;
    let work: Release | null = null;
    try {
      if (!services.credentials.isLive(p)) {
        setImmediate(() => socket.disconnect(true));
        throw expired();
      }
      turn = protection.enterSocket(socket.id);
      await protection.admit(ip, p, c.cls);
      work = await protection.enter(p);
      if (!c.idempotent) return ack({ ok: true, ...(await c.run(socket, payload) as object) });
      const { key, body } = splitKey(payload);
      ack(await pipeline.answer(p, event, key, body, () => c.run(socket, body)));
    } catch (err) {
      ack({ ok: false, error: pipeline.problem(err) });
    } finally {
      work?.();
      turn?.();
    }
  }

  const subscribe = async (socket: LiveSocket, payload: unknown) => {
    const session = socket.data;
    const p = session.principal;
    const s = parse(SubscribeInput, payload);
    const watching = new Set([...subscribedResources(socket, p), ...(session.joining?.keys() ?? []), ...s.resourceIds]);
    if (watching.size > MAX_SUBSCRIBED_RESOURCES) {
      throw new DomainError('limit-exceeded', `one connection may watch ${MAX_SUBSCRIBED_RESOURCES} resources at once; unsubscribe from some first`, {
        limit: 'subscriptions.socket', max: MAX_SUBSCRIBED_RESOURCES,
      });
    }
    const joining = (session.joining ??= new Map());
    for (const id of s.resourceIds) joining.set(id, (joining.get(id) ?? 0) + 1);
    try {
      // Rooms first, then the seq, then the snapshot: every event after the seq arrives live, and events after it
      // may already show in the snapshot (clients dedupe by seq). The seq covers every change committed before
      // the subscribe, so the first live event of each resource names (prevSeq) at most it, unless one was missed.
      const rooms = s.resourceIds.map((id) => roomOf(p.tenantId, id, audienceOf(p)));
      const already = new Set(socket.rooms);
      await socket.join(rooms);
      try {
        const seq = await services.events.head();
        let read = 0;
        const availability = await services.availability.query(p.tenantId, { resourceIds: s.resourceIds, from: ms(s.from), to: ms(s.to), seats: 1, mode: 'all' }, (n) => (read = n));
        if (read >= SLOTS_PER_REQUEST) await protection.charge(session.ip, p, 'availability', read / SLOTS_PER_REQUEST);
        return { seq, availability };
      } catch (err) {
        for (const room of rooms) if (!already.has(room)) await socket.leave(room);
        throw err;
      }
    } finally {
      for (const id of s.resourceIds) {
        const n = (joining.get(id) ?? 1) - 1;
        if (n <= 0) joining.delete(id);
        else joining.set(id, n);
      }
      if (joining.size === 0 && session.joining === joining) session.joining = null;
    }
  };

  const unsubscribe = async (socket: LiveSocket, payload: unknown) => {
    const p = socket.data.principal;
    const s = parse(UnsubscribeInput, payload);
    for (const id of s.resourceIds) await socket.leave(roomOf(p.tenantId, id, audienceOf(p)));
    return {};
  };

  const resync = async (socket: LiveSocket, payload: unknown) => {
    const p = socket.data.principal;
    const { afterSeq } = parse(ResyncInput, payload);
    const resourceIds = subscribedResources(socket, p);
    if (resourceIds.length === 0) return { events: [] };
    const rows = await services.events.missed(p.tenantId, resourceIds, afterSeq);
    if (!rows) return { snapshotRequired: true };
    const view = p.kind === 'tenant' ? (d: Record<string, unknown>) => d : publicData;
    return { events: rows.map((e) => ({ type: e.type, seq: e.seq, resourceIds: e.resourceIds, ...view(e.data) })) };
  };

  // The hold commands REST carries too, through the same pipeline; commands on a hold name it in `holdId`.
  const onHold = <S extends z.ZodType, O>(cmd: CoreCommand<S, O>) => (socket: LiveSocket, body: unknown) =>
    pipeline.run(cmd, socket.data.principal, withoutHoldId(body), '', parse(HoldIdInput, body).holdId);
  const confirm = onHold(commands.confirm);
  /** Every command, by event name: one table for all connections. */
  const commandsByEvent = new Map<string, CommandSpec>([
    ['subscribe', { run: subscribe, idempotent: false, cls: 'availability' }],
    ['unsubscribe', { run: unsubscribe, idempotent: false, cls: 'api' }],
    ['resync', { run: resync, idempotent: false, cls: 'api' }],
    ['hold.create', { run: (socket, body) => pipeline.run(commands.create, socket.data.principal, body, ''), idempotent: true, cls: 'api' }],
    ['hold.extend', { run: onHold(commands.extend), idempotent: true, cls: 'api' }],
    ['hold.release', { run: onHold(commands.release), idempotent: true, cls: 'api' }],
    ['hold.confirm', { run: async (socket, body) => (await confirm(socket, body)).booking, idempotent: true, cls: 'api' }],
  ]);

  /**
   * Every event a connection sends (one listener shared by all, `this` being
   * the socket, in place of one closure per command per connection). Like
   * Socket.IO's own dispatch, it ignores events of a socket already
   * disconnected and events no command has.
   */
  function onEvent(this: LiveSocket, event: string, payload?: unknown, cb?: unknown): void {
    const c = commandsByEvent.get(event);
    if (!c || !this.connected) return;
    void runCommand(this, event as keyof ClientToServerEvents, c, payload, cb);
  }
  function onError(err?: Error | null): void {
    log.debug({ err: err?.message ?? String(err) }, 'socket error');
  }

  io.on('connection', (socket: LiveSocket) => {
    // From now on the socket's disconnect ends the session (it comes with the connection's close too).
    socket.conn.off('close', onConnClose);
    socket.onAny(onEvent);
    socket.on('disconnect', onDisconnect);
    socket.on('error', onError);
  });

  // Unknown packets or engine errors must never take the node down.
  io.engine.on('connection_error', (err: { message: string }) => log.debug({ err: err.message }, 'socket.io connection error'));
  cutSlowReaders(io, log);
  return io;
}

interface CommandSpec {
  run: (socket: LiveSocket, payload: unknown) => Promise<unknown>;
  /** Runs through the pipeline's idempotency (the payload may carry an idempotencyKey). */
  idempotent: boolean;
  /** The budget it is charged to. */
  cls: RequestClass;
}

function onDisconnect(this: LiveSocket): void {
  this.data.done();
}

/** The resources a connection is subscribed to. */
function subscribedResources(socket: LiveSocket, p: TenantPrincipal): string[] {
  const prefix = `t:${p.tenantId}:r:`;
  return [...socket.rooms].filter((r) => r.startsWith(prefix)).map((r) => r.slice(prefix.length).replace(/:all$/, ''));
}

/**
 * Every two seconds, disconnects local connections whose output piles up
 * unsent (a client that subscribes to busy resources and never reads): what
 * they do not read stays in this node's memory.
 */
function cutSlowReaders(io: LiveServer, log: Logger): void {
  const timer = setInterval(() => {
    for (const socket of io.of('/').sockets.values()) {
      const conn = socket.conn as unknown as { writeBuffer?: unknown[]; transport?: { socket?: { bufferedAmount?: number } } };
      const packets = conn.writeBuffer?.length ?? 0;
      const bytes = conn.transport?.socket?.bufferedAmount ?? 0;
      if (packets > MAX_SOCKET_BACKLOG_PACKETS || bytes > MAX_SOCKET_BACKLOG_BYTES) {
        log.info({ packets, bytes }, 'socket.io: disconnecting a connection that does not read');
        socket.disconnect(true);
      }
    }
  }, 2_000);
  timer.unref();
  io.engine.on('close', () => clearInterval(timer));
}

/**
 * The adapter never awaits its Redis commands: while Redis is down each
 * publish is rejected after a few retries, and an unhandled rejection would
 * take the node down. Failed commands are logged instead (REST goes on; the
 * adapter's subscriptions come back by themselves when Redis does).
 */
function guarded(client: Redis, log: Logger): Redis {
  client.on('error', () => {}); // connection errors are logged by the bus's own clients
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command: Command, stream?: Parameters<Redis['sendCommand']>[1]) => {
    command.promise.catch((err: Error) => {
      if (command.name === 'publish') log.warn({ err: err.message }, 'live fan-out through Redis failed');
      else log.debug({ err: err.message, command: command.name }, 'redis adapter command failed');
    });
    return send(command, stream);
  };
  return client;
}

function withoutHoldId(body: unknown): unknown {
  if (!body || typeof body !== 'object') return body;
  const { holdId: _, ...rest } = body as Record<string, unknown>;
  return rest;
}
