/**
 * The Slotwise client for integrators and the browser demo: REST over the
 * types generated from /openapi.json, live events and hold commands over
 * Socket.IO, and group booking documents over Yjs, sharing one server clock.
 *
 *   const sw = createSlotwiseClient({ baseUrl: 'http://localhost:3000', token });
 *   const { data } = await sw.rest.GET('/v1/resources');
 *   const live = sw.live(); await live.watch({ resourceIds, from, to }, render);
 *   const group = sw.group(docName);
 */
import { ServerClock } from './clock';
import { GroupSession } from './group';
import { LiveClient, type LiveOptions } from './live';
import { createRestClient, type RestClient } from './rest';

export { ServerClock, type ClockSample } from './clock';
export { GroupSession, type DraftEdit, type GroupStatus, type Peer, type Presence } from './group';
export { LiveClient, Watch, type AvailabilityView, type Booking, type CommandAck, type DomainEvent, type Hold, type LiveStatus, type Slot, type WatchRange } from './live';
export { ApiError, createRestClient, must, problemOf, type RestClient, type Schemas, type components, type paths } from './rest';

export interface SlotwiseClientOptions {
  /** The server's origin ('' for the page's own origin in a browser). */
  baseUrl: string;
  /** The credential; a function is asked on every request and connection. */
  token?: string | (() => string | null | undefined);
  /** A WebSocket implementation for Yjs where there is no global one (Node before 22: `ws`). */
  WebSocket?: unknown;
}

export interface SlotwiseClient {
  rest: RestClient;
  clock: ServerClock;
  /** Opens a Socket.IO connection (each call opens one). */
  live(opts?: Partial<LiveOptions>): LiveClient;
  /** Opens a group booking document by its `docName` (group-booking:<id>). */
  group(docName: string): GroupSession;
}

/** Builds a client for one server and one credential. */
export function createSlotwiseClient(opts: SlotwiseClientOptions): SlotwiseClient {
  const clock = new ServerClock();
  const token = () => (typeof opts.token === 'function' ? opts.token() : opts.token) ?? null;
  const origin = opts.baseUrl || (globalThis as { location?: { origin: string } }).location?.origin || '';
  return {
    rest: createRestClient({ baseUrl: opts.baseUrl, token, clock }),
    clock,
    live: (extra = {}) => new LiveClient({ baseUrl: origin, token, clock, ...extra }),
    group: (docName) => new GroupSession({ baseUrl: origin, docName, token: token() ?? '', WebSocket: opts.WebSocket }),
  };
}
