/**
 * Limits on the node's TCP connections, the way a front proxy would set them:
 * header and body read deadlines (a request head sent slowly gets its 408),
 * keep-alive idle time and requests per connection, connections per client
 * address and in all. Without them a few thousand half-open connections use
 * up the process's descriptors and /healthz stops answering with the rest.
 */
import { STATUS_CODES, type Server, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import { problem, type ErrorCode } from '../../shared/errors';
import type { Limits } from '../core/limits';
import type { Logger } from '../core/ports';
import { clientAddress } from '../core/services/protection';

/** The node:http server options for `limits`' timeouts (some can only be given at creation). */
export function serverOptions(limits: Limits): ServerOptions {
  const { http } = limits;
  return {
    headersTimeout: http.headersTimeoutMs,
    // Node counts requestTimeout from the start of the request: the head plus the whole body.
    requestTimeout: Math.max(http.requestTimeoutMs, http.headersTimeoutMs),
    keepAliveTimeout: http.keepAliveTimeoutMs,
    // How often those deadlines are checked (Node's default, 30 s, let a slow head go on for 40 s past a 10 s deadline).
    connectionsCheckingInterval: Math.min(1_000, http.headersTimeoutMs),
  };
}

/** The paths whose upgrades the live gateways take (each answers its own); every other upgrade is refused here. */
const UPGRADE_PATHS = ['/socket.io/', '/yjs/'];

/** What node:http's parser errors mean, as problems (any other parser error is a malformed request). */
const PARSER_ERRORS: Record<string, ErrorCode> = { HPE_HEADER_OVERFLOW: 'headers-too-large', ERR_HTTP_REQUEST_TIMEOUT: 'request-timeout' };

/**
 * Answers a request node:http refuses before the app sees it (headers over 16 KiB, a head or body sent too
 * slowly, bytes that are not HTTP) with a problem+json like every other refusal, where Node's own answer has
 * no body; then closes the connection, as Node does.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  const message = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || message?.headersSent) {
    socket.destroy();
    return;
  }
  const code = PARSER_ERRORS[err.code ?? ''] ?? 'malformed-request';
  const body = JSON.stringify(problem(code));
  const status = problem(code).status;
  socket.write(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
  // A client that does not read its answer does not keep the descriptor.
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/** Applies the keep-alive request cap and the connection caps of `limits` to `server`. */
export function guardConnections(server: Server, limits: Limits, log: Logger): void {
  const { http, connections } = limits;
  server.maxRequestsPerSocket = http.keepAliveMaxRequests;
  server.on('clientError', answerClientError);
  // Node takes its own error listener off a socket before 'upgrade', and the gateways attach theirs only
  // once they take it over (Socket.IO after its handshake checks): a reset in between must not throw.
  // An upgrade for no gateway would otherwise stay open for ever, out of every HTTP deadline.
  server.prependListener('upgrade', (req, socket: Socket) => {
    socket.on('error', destroyOnError);
    if (!UPGRADE_PATHS.some((p) => req.url?.startsWith(p))) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      socket.destroySoon?.();
    }
  });
  if (connections.max > 0) server.maxConnections = connections.max;
  // Behind trusted proxies every connection comes from a proxy: the per-address cap is theirs to enforce.
  if (connections.perIp <= 0 || limits.trustProxy > 0) return;
  const open = new Map<string, number>();
  // Each open connection's address, for its close: one listener shared by all (a closure per connection is memory each keeps).
  const addressOf = new WeakMap<Socket, string>();
  function onClose(this: Socket): void {
    const ip = addressOf.get(this);
    if (ip === undefined) return;
    addressOf.delete(this);
    const left = (open.get(ip) ?? 1) - 1;
    if (left <= 0) open.delete(ip);
    else open.set(ip, left);
  }
  let refused = 0;
  let lastLog = 0;
  server.on('connection', (socket: Socket) => {
    const ip = clientAddress(socket.remoteAddress, undefined, 0);
    const n = (open.get(ip) ?? 0) + 1;
    if (n > connections.perIp) {
      socket.destroy();
      refused++;
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log.warn({ ip, limit: connections.perIp, refused }, 'connections refused: too many from one address');
        refused = 0;
      }
      return;
    }
    open.set(ip, n);
    addressOf.set(socket, ip);
    socket.on('close', onClose);
  });
}

function destroyOnError(this: Socket): void {
  this.destroy();
}
