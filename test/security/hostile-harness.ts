/**
 * The stage of the hostile-client suite: two real node processes with the
 * production limits, sharing a database of their own and the run's Redis; a
 * prober asking both for /healthz ten times a second; and a victim tenant
 * holding and releasing seats from 127.0.0.1. Attacks come from other
 * loopback addresses (127.0.0.2 and up), so per-address limits hit the
 * attacker alone. After
 * each attack the test asserts the node stayed up, /healthz answered within a
 * second throughout, and the victim saw no 5xx.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect, inject } from 'vitest';
import { futureWeekday, isolatedDatabase, newTenant, type TestNode } from '../helpers/node';
import { killAll, rawRequest, spawnNode, watchPool, type NodeProcess, type RawOutcome } from '../helpers/process';

export interface Probe {
  /** The slowest /healthz answer so far (ms), per node. */
  worst: Record<string, number>;
  /** /healthz requests that failed or did not answer 200, per node. */
  failures: Record<string, string[]>;
  stop(): void;
}

/**
 * Asks every node for /healthz every 100 ms, on a fresh connection each time
 * as a load balancer does, from a process of its own (probe-worker.ts).
 */
export function probeHealth(nodes: NodeProcess[]): Probe {
  const worst: Record<string, number> = {};
  const failures: Record<string, string[]> = {};
  for (const n of nodes) {
    worst[n.name] = 0;
    failures[n.name] = [];
  }
  const targets = Object.fromEntries(nodes.map((n) => [n.name, n.url]));
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'probe-worker.ts'), JSON.stringify(targets)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  child.stdout!.on('data', (d) => {
    buf += d;
    let at: number;
    while ((at = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, at);
      buf = buf.slice(at + 1);
      const p = JSON.parse(line) as { name: string; ms: number; ok: boolean; why?: string };
      worst[p.name] = Math.max(worst[p.name] ?? 0, p.ms);
      if (!p.ok) failures[p.name]?.push(p.why ?? 'failed');
    }
  });
  return { worst, failures, stop: () => void child.kill('SIGKILL') };
}

export interface Victim {
  /** Every answer the victim got (status and time), since start. */
  outcomes: { status: number | string; ms: number; what: string }[];
  stop(): Promise<void>;
}

/**
 * Another tenant's back end going about its business on both nodes: hold a
 * slot, read it, release it, every 400 ms, from 127.0.0.1.
 */
export async function startVictim(nodes: NodeProcess[], tenant: Awaited<ReturnType<typeof newTenant>>, resourceId: string): Promise<Victim> {
  const outcomes: Victim['outcomes'] = [];
  let stopped = false;
  const day = futureWeekday(9);
  const record = (o: RawOutcome, what: string) => {
    outcomes.push({ status: o.kind === 'response' ? o.status : o.code, ms: o.ms, what });
    return o;
  };
  const run = (async () => {
    for (let i = 0; !stopped; i++) {
      const node = nodes[i % nodes.length]!;
      const hour = String(i % 24).padStart(2, '0');
      const h = record(await rawRequest(node.url, 'POST', '/v1/holds', { token: tenant.key, body: { resourceIds: [resourceId], start: `${day}T${hour}:00:00Z`, end: `${day}T${hour}:30:00Z` } }), 'hold');
      if (h.kind === 'response' && h.status === 201) {
        record(await rawRequest(node.url, 'GET', `/v1/holds/${h.body.id}`, { token: tenant.key }), 'read');
        record(await rawRequest(nodes[(i + 1) % nodes.length]!.url, 'DELETE', `/v1/holds/${h.body.id}`, { token: tenant.key }), 'release');
      }
      await new Promise((r) => setTimeout(r, 400));
    }
  })();
  return {
    outcomes,
    async stop() {
      stopped = true;
      await run;
    },
  };
}

/** The stage: two nodes with production limits, a victim tenant, helpers to reach them. */
export async function hostileStage(extraEnv: Record<string, string> = {}) {
  const db = await isolatedDatabase();
  const pool = watchPool(db.url);
  const env = { DATABASE_URL: db.url, REDIS_URL: inject('redisUrl'), SLOT_HORIZON_DAYS: '70', ...extraEnv };
  const nodes = await Promise.all([spawnNode('hostile-a', env, { productionLimits: true }), spawnNode('hostile-b', env, { productionLimits: true })]);
  const victimTenant = await newTenant(nodes[0] as unknown as TestNode, 'victim');
  const victimRoom = await victimTenant.newResource({ capacity: 5, slotMinutes: 30 });
  return {
    nodes,
    db,
    pool,
    victimTenant,
    victimRoom,
    async stop() {
      await killAll();
      await pool.end();
      await db.drop();
    },
  };
}

/** Resident memory of a node process, in MiB (Linux). */
export function rssMiB(n: NodeProcess): number {
  const status = readFileSync(`/proc/${n.proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Open descriptors of a node process (Linux). */
export function openFds(n: NodeProcess): number {
  return readdirSync(`/proc/${n.proc.pid}/fd`).length;
}

/** What every hostile test asserts after each attack: both nodes up and small, /healthz within a second throughout, no victim 5xx. */
export function expectUnharmed(nodes: NodeProcess[], probe: Probe, victim: Victim): void {
  for (const n of nodes) {
    expect(n.alive(), `${n.name} died:\n${n.output().slice(-2000)}`).toBe(true);
    expect(probe.failures[n.name], `${n.name} /healthz failures`).toEqual([]);
    expect(probe.worst[n.name], `${n.name} slowest /healthz (ms)`).toBeLessThan(1_000);
    expect(rssMiB(n), `${n.name} RSS (MiB)`).toBeLessThan(700);
  }
  expect(victim.outcomes.filter((o) => typeof o.status !== 'number' || o.status >= 500), 'the victim saw failures').toEqual([]);
  expect(victim.outcomes.length).toBeGreaterThan(0);
}
