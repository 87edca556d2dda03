/**
 * `npm start` with no DATABASE_URL runs an embedded Postgres under DATA_DIR;
 * what was made through it is still there after a clean restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../server/db/embedded';
import { client } from '../helpers/node';

const ROOT = path.resolve(import.meta.dirname, '../..');
let dataDir = '';

interface Started {
  proc: ChildProcess;
  output: () => string;
  creds: Record<string, string>;
}

/** Runs `npm start` and resolves once it printed its banner. */
async function npmStart(port: number): Promise<Started> {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'info' };
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'ADMIN_TOKEN', 'JWT_SECRET']) delete env[k];
  // Its own process group, so a signal reaches npm, tsx and node alike, as Ctrl-C in a terminal does.
  const proc = spawn('npm', ['start', '--silent'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 90_000;
  while (!/API_KEY=\S+/.test(out)) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const creds: Record<string, string> = Object.fromEntries([...out.matchAll(/^\s+(ADMIN_TOKEN|TENANT_ID|API_KEY)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  return { proc, output: () => out, creds };
}

/** Sends SIGTERM to the process group and waits until every process writing to the pipes is gone. */
async function stop(s: Started): Promise<string> {
  const closed = new Promise<void>((resolve) => s.proc.stdout!.once('close', () => resolve()));
  process.kill(-s.proc.pid!, 'SIGTERM');
  await closed;
  return s.output();
}

afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('npm start with the embedded Postgres', () => {
  it('keeps data and dev credentials across a restart', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'slotwise-restart-'));
    // As root, Postgres runs as the OS user postgres: let it in, or the cluster would go to /var/lib/slotwise.
    await chmod(dataDir, 0o755);
    const port = await freePort();
    const first = await npmStart(port);
    expect(first.output()).toContain(`Slotwise is running on http://localhost:${port}`);
    expect(first.creds.API_KEY).toMatch(/^sw_/);
    const api = client(`http://127.0.0.1:${port}`, first.creds.API_KEY);
    const room = await api('POST', '/v1/resources', { name: 'Persistent room', capacity: 3 });
    expect(room.status).toBe(201);
    expect(await stop(first)).toContain('stopped cleanly');

    const second = await npmStart(port);
    try {
      expect(second.creds).toEqual(first.creds);
      const again = await client(`http://127.0.0.1:${port}`, second.creds.API_KEY)('GET', `/v1/resources/${room.body.id}`);
      expect(again.status).toBe(200);
      expect(again.body.name).toBe('Persistent room');
    } finally {
      expect(await stop(second)).toContain('stopped cleanly');
    }
  }, 180_000);
});
