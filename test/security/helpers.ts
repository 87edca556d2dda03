/**
 * Helpers for the security and fuzz tests: a node whose pino output is
 * captured line by line (at `trace`, so everything any code path logs is
 * seen), raw WebSocket clients, a recording HTTP client and token forging.
 */
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import pino from 'pino';
import WebSocket from 'ws';
import { ContractError } from '../helpers/contract';
import { client, startNode, type Reply, type TestNode } from '../helpers/node';

/** The JWT secret startNode uses; the tests below set it explicitly so they can forge tokens. */
export const JWT_SECRET = 'security-jwt-secret-0123456789-0123456789-abc';

export interface LoggedNode extends TestNode {
  /** Every line the node logged, raw (JSON text), in order. */
  lines: string[];
  /** The parsed lines at `level` or above (pino numbers: 40 warn, 50 error, 60 fatal). */
  atLeast(level: number): { level: number; msg?: string; [k: string]: unknown }[];
}

/**
 * Starts a node like startNode, with a pino logger at `trace` writing into
 * memory instead of stdout. `env` overrides the test settings.
 */
export async function startLoggedNode(env: Record<string, string> = {}): Promise<LoggedNode> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const log = pino({ level: 'trace', base: { node: env.NODE_ID ?? 'logged' } }, sink);
  const node = await startNode({ JWT_SECRET, LOG_LEVEL: 'trace', ...env }, { log });
  return {
    ...node,
    lines,
    atLeast(level) {
      return lines.map((l) => JSON.parse(l)).filter((l) => l.level >= level);
    },
  };
}

/**
 * Signs a user token with any claims (expired ones too: `exp` in seconds since the epoch; `exp: null`
 * leaves the claim out). Without `jti` the token has none, which the server refuses like a forged one.
 */
export async function forgeToken(claims: { tid: string; sub: string; role?: string; exp: number | null; iss?: string; jti?: string }, secret = JWT_SECRET): Promise<string> {
  const jwt = new SignJWT({ tid: claims.tid, name: claims.sub, role: claims.role ?? 'member' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(claims.iss ?? 'slotwise')
    .setIssuedAt(Math.min((claims.exp ?? Infinity) - 60, Math.floor(Date.now() / 1000)));
  if (claims.exp !== null) jwt.setExpirationTime(claims.exp);
  if (claims.jti) jwt.setJti(claims.jti);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** A raw WebSocket with a queue of received messages and its close code. */
export interface RawSocket {
  ws: WebSocket;
  messages: { data: Buffer; binary: boolean }[];
  closed: Promise<{ code: number; reason: string }>;
  isOpen(): boolean;
}

/** Opens a raw WebSocket and waits until it is open (or rejects if the upgrade fails). */
export async function rawSocket(url: string): Promise<RawSocket> {
  const ws = new WebSocket(url);
  const messages: RawSocket['messages'] = [];
  ws.on('message', (data, binary) => messages.push({ data: Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), binary }));
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('close', () => reject(new Error('closed before open')));
  });
  return { ws, messages, closed, isOpen: () => ws.readyState === WebSocket.OPEN };
}

/** An HTTP client that keeps every answer it got, so a test can search them all afterwards. */
export function recordingClient(base: string, credential: string | undefined, into: Reply[]) {
  const call = client(base, credential);
  return async function recorded(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply> {
    let r: Reply;
    try {
      r = await call(method, path, body, headers);
    } catch (err) {
      // A body over the 64 KiB limit is answered 413 at once; @hono/node-server then drains the rest of the
      // upload for at most 500 ms and closes the connection. On a loaded machine the client may see that close
      // before the 413. That is the server refusing the body, so it is reported as status 0, for such bodies only.
      const size = body === undefined ? 0 : Buffer.byteLength(typeof body === 'string' ? body : JSON.stringify(body));
      if (size <= 64 * 1024 || err instanceof ContractError) throw err;
      r = { status: 0, body: null, headers: new Headers(), text: '' };
    }
    into.push(r);
    return r;
  };
}

/** Like waitFor, polling every 2 ms (for tight probe loops over raw sockets). */
export async function poll(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Every route the app serves, from its own route table (middleware, registered for every method, is not a route). */
export function declaredRoutes(app: { routes: { method: string; path: string }[] }): { method: string; path: string }[] {
  const seen = new Set<string>();
  const out: { method: string; path: string }[] = [];
  for (const r of app.routes) {
    if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method) || seen.has(`${r.method} ${r.path}`)) continue;
    seen.add(`${r.method} ${r.path}`);
    out.push({ method: r.method, path: r.path });
  }
  return out;
}
