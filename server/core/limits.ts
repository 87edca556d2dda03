/**
 * The bounds a node protects itself and its tenants with (PRODUCT.md §8).
 * Values come from the environment (server/config.ts); docs/security.md lists
 * each with its default. A 0 for a count or a rate means "no limit".
 */

/** Requests per minute, per client address, per user token and per API key. */
export interface RateBudget {
  ip: number;
  user: number;
  key: number;
}

export interface Limits {
  /** How many proxies in front of the node to trust for X-Forwarded-For (0: use the peer address). */
  trustProxy: number;
  rates: {
    /** Every request and live command except availability reads. */
    api: RateBudget;
    /** GET /v1/availability and Socket.IO subscribe: a higher budget of their own. */
    availability: RateBudget;
    /** Failed authentications per client address per minute; past it, credentials from there are refused with 429. */
    authFailuresPerIp: number;
  };
  /** Requests being worked on at once, per node. */
  inflight: { socket: number; user: number; tenant: number };
  connections: {
    /** TCP connections from one client address (HTTP, Socket.IO and Yjs alike). */
    perIp: number;
    /** TCP connections in all; past it new ones are refused (the descriptors left keep the node alive). */
    max: number;
    /** Socket.IO and Yjs connections of one user token on this node. */
    socketsPerUser: number;
  };
  holds: {
    /** Live holds one user (token) may have at once. */
    perUser: number;
    /** Holds one user may place on the same slot within the window (release and hold again). */
    reholdLimit: number;
    reholdWindowSeconds: number;
  };
  http: {
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    keepAliveMaxRequests: number;
    /** Reads that take longer are answered 503 deadline-exceeded. */
    deadlineMs: number;
  };
  /** Statement and idle-transaction deadlines; requests waiting for a connection past which new work is refused 503 (0: no bound). */
  db: { statementTimeoutMs: number; idleInTransactionTimeoutMs: number; queueMax: number };
  /** What one Yjs connection may send and one document may grow to (realtime/yjs/limits.ts has the rest). */
  yjs: { maxDocBytes: number; messagesPerSecond: number; updateBytesPerMinute: number };
  /** How much one answer (and the availability cache) may hold. */
  answers: { availabilityMaxSlots: number; availabilityCacheBytes: number; feedMaxBytes: number };
  /** Calendar feeds: events one feed answer holds (the soonest), and feeds one tenant may have. */
  calendar: { maxEvents: number; feedsPerTenant: number };
}
