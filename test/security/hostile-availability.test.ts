/**
 * Hostile availability reads against two nodes with the production limits
 * (issue 8's attacks, replayed): answers of hundreds of MiB, durations that
 * stalled the event loop, subscriptions over a century. Each is bounded now:
 * the node stays up and small, /healthz answers within a second throughout,
 * the victim tenant sees no 5xx, and the attacker gets a 4xx or 429 naming
 * the limit. A big answer costs its token's budget in proportion.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { futureWeekday, newTenant, type TestNode } from '../helpers/node';
import { liveClient, rawRequest, type RawOutcome } from '../helpers/process';
import { expectUnharmed, hostileStage, probeHealth, rssMiB, startVictim, type Probe, type Victim } from './hostile-harness';

let stage: Awaited<ReturnType<typeof hostileStage>>;
let probe: Probe;
let victim: Victim;
let mallory: Awaited<ReturnType<typeof newTenant>>;
let fine: { id: string }[]; // 5-minute grid
let hourly: { id: string }[];
const day = futureWeekday(1);
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const from = Date.parse(`${day}T00:00:00Z`);
let nextAddress = 40;
const attackerAddress = () => `127.0.0.${nextAddress++}`;

beforeAll(async () => {
  stage = await hostileStage();
  mallory = await newTenant(stage.nodes[0] as unknown as TestNode, 'attacker');
  fine = await Promise.all([0, 1].map(() => mallory.newResource({ slotMinutes: 5 })));
  hourly = await Promise.all(Array.from({ length: 10 }, () => mallory.newResource({ slotMinutes: 60 })));
  probe = probeHealth(stage.nodes);
  victim = await startVictim(stage.nodes, stage.victimTenant, stage.victimRoom.id);
}, 120_000);

afterAll(async () => {
  if (probe) console.log(`hostile-availability: slowest /healthz ${JSON.stringify(probe.worst)} ms; RSS ${stage.nodes.map((n) => `${n.name} ${Math.round(rssMiB(n))} MiB`).join(', ')}`);
  probe?.stop();
  await victim?.stop();
  await stage?.stop();
});

/** After every attack: both nodes up, /healthz within a second throughout, the victim never saw a 5xx. */
afterEach(() => expectUnharmed(stage.nodes, probe, victim));

async function userToken(): Promise<string> {
  const r = await mallory.api('POST', '/v1/tokens', { userId: `m-${Math.random().toString(36).slice(2, 8)}`, name: 'M', role: 'member' });
  expect(r.status, r.text).toBe(201);
  return r.body.token;
}

const statusOf = (o: RawOutcome) => (o.kind === 'response' ? o.status : o.code);
const bodyOf = (o: RawOutcome) => (o.kind === 'response' ? o.body : null);

describe('availability from one end-user token', () => {
  it('one id listed 100 times over 62 days of 5-minute slots is read once; 25 of them leave the node small, and the budget pays for their size', async () => {
    const token = await userToken();
    const ATTACKER = attackerAddress();
    const [a] = stage.nodes;
    const ids = Array(100).fill(fine[0]!.id).join(',');
    const outcomes: RawOutcome[] = [];
    for (let i = 0; i < 25; i++) {
      // A different `seats` each time: no answer comes from the node's answer cache (a cached one is not charged;
      // with 20 values, the last five repeated answers still cached, now that answers come from slot memory fast).
      const path = `/v1/availability?resourceIds=${ids}&from=${iso(from)}&to=${iso(from + 62 * DAY)}&seats=${1 + i}`;
      // One node: this shows the size-based charge alone (a budget shared through Redis is the sweep's and
      // protection tests' subject).
      outcomes.push(await rawRequest(a!.url, 'GET', path, { token, localAddress: ATTACKER }));
    }
    const answered = outcomes.filter((o) => statusOf(o) === 200);
    expect(answered.length).toBeGreaterThan(0);
    for (const o of answered) {
      const body = bodyOf(o);
      expect(body.resources).toHaveLength(1);
      expect(JSON.stringify(body).length).toBeLessThan(3 * 1024 * 1024);
    }
    // Each answer read ~18,000 slots: 18 more requests' worth of the token's 400-per-10-s availability budget.
    expect(answered.length).toBeLessThan(25);
    for (const o of outcomes.filter((x) => statusOf(x) !== 200)) {
      expect(statusOf(o)).toBe(429);
      expect(bodyOf(o).limit).toBe('rate.availability.user');
    }
  });

  it('more slots than an answer may read is 422 naming the bound, and costs the node almost nothing', async () => {
    const token = await userToken();
    const ATTACKER = attackerAddress();
    const [a] = stage.nodes;
    const path = `/v1/availability?resourceIds=${fine.map((r) => r.id).join(',')}&from=${iso(from)}&to=${iso(from + 62 * DAY)}`;
    // What the refusals cost the node, in its own CPU time (wall time also counts whatever else the machine runs).
    const cpuSeconds = async () => Number(/^process_cpu_seconds_total (\S+)$/m.exec(await (await fetch(`${a!.url}/metrics`)).text())![1]);
    const cpu0 = await cpuSeconds();
    const t0 = Date.now();
    const tries: RawOutcome[] = [];
    for (let i = 0; i < 20; i++) tries.push(await rawRequest(a!.url, 'GET', path, { token, localAddress: ATTACKER }));
    const wallMs = (Date.now() - t0) / 20;
    const cpuMs = ((await cpuSeconds()) - cpu0) * 1000 / 20;
    console.log(`availability refusals: ${cpuMs.toFixed(1)} ms node CPU, ${wallMs.toFixed(1)} ms wall each`);
    expect(cpuMs, 'node CPU ms per refusal').toBeLessThan(25);
    // Never a stall: a refusal is answered at once.
    expect(wallMs, 'ms per refusal').toBeLessThan(250);
    for (const o of tries) {
      expect(statusOf(o)).toBe(422);
      expect(bodyOf(o)).toMatchObject({ code: 'limit-exceeded', limit: 'availability.slots', max: 20_000 });
    }
  });

  it('a 31-day duration answers fast or is refused; it never stalls the node', async () => {
    const token = await userToken();
    const ATTACKER = attackerAddress();
    const [a, b] = stage.nodes;
    const range = `from=${iso(from)}&to=${iso(from + 30 * DAY)}&duration=44640`;
    // 8 hourly resources read about 14,000 slots (30 days, plus 31 of duration): computed.
    const ok = await rawRequest(a!.url, 'GET', `/v1/availability?resourceIds=${hourly.slice(0, 8).map((r) => r.id).join(',')}&${range}&mode=any`, { token, localAddress: ATTACKER });
    expect(statusOf(ok)).toBe(200);
    expect(ok.ms).toBeLessThan(1_000);
    // 30 ids (the two 5-minute resources, 15 times each): about 35,000 slots over the 61 days read: refused.
    const ids = Array.from({ length: 30 }, (_, i) => fine[i % 2]!.id).join(',');
    const refused = await rawRequest(b!.url, 'GET', `/v1/availability?resourceIds=${ids}&${range}`, { token, localAddress: ATTACKER });
    expect(statusOf(refused)).toBe(422);
    expect(bodyOf(refused).limit).toBe('availability.slots');
  });

  it('subscribe over a century of 100 ids is refused at once naming the range', async () => {
    const token = await userToken();
    const [a] = stage.nodes;
    const client = await liveClient(a!.url, token, { localAddress: attackerAddress() });
    try {
      const ack = await client.call('subscribe', { resourceIds: Array(100).fill(fine[0]!.id), from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' });
      expect(ack.ok).toBe(false);
      expect([400, 422]).toContain(ack.error.status);
      expect(JSON.stringify(ack.error)).toMatch(/62 days/);
    } finally {
      client.socket.disconnect();
    }
  });
});
