/**
 * P4's load, an open loop: POST /v1/bookings on a fixed schedule, request i
 * at t0 + i / rate, each sent when due whether or not earlier ones were
 * answered (a free keep-alive connection is reused, else a new one opened,
 * up to `maxSockets`; past that a request waits in the client for one, which
 * the result counts). Request i books a distinct slot: slot
 * `slotOffset + ⌊i / resources⌋` of resource `i mod resources`, with
 * metadata.benchKey `${keyPrefix}${i}`. With `paths`, request i is instead
 * `GET paths[i mod paths.length]` (P3's availability queries), no body.
 *
 * Prints `MEASURING {first}` when the first timed request (after `warmupS`)
 * is sent, and `RESULT {...}` once every request is answered or `drainS` has
 * passed after the last was sent: statuses and latency (from each request's
 * scheduled time, so a server that falls behind shows it) of the timed
 * requests, and the rate at which they were answered.
 */
import http from 'node:http';
import { monoMs } from '../lib/clock';
import { workerConfig } from '../lib/config';
import { percentiles } from '../lib/stats';

interface Config {
  url: string;
  path: string;
  rate: number;
  warmupS: number;
  durationS: number;
  drainS: number;
  headers: Record<string, string>;
  resourceIds: string[];
  baseMs: number;
  slotMs: number;
  slotOffset: number;
  keyPrefix: string;
  maxSockets?: number;
  /** GET these paths in turn instead of booking. */
  paths?: string[];
}

const cfg = workerConfig<Config>();
const { hostname, port } = new URL(cfg.url);
const maxSockets = cfg.maxSockets ?? 1024;
const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
const headers = { 'content-type': 'application/json', ...cfg.headers };

function bodyFor(i: number): string {
  const ids = cfg.resourceIds;
  const slot = cfg.slotOffset + Math.floor(i / ids.length);
  const start = new Date(cfg.baseMs + slot * cfg.slotMs).toISOString();
  const end = new Date(cfg.baseMs + (slot + 1) * cfg.slotMs).toISOString();
  return JSON.stringify({ resourceIds: [ids[i % ids.length]], start, end, customer: { name: 'Bench', email: 'bench@example.com' }, metadata: { benchKey: `${cfg.keyPrefix}${i}` } });
}

const firstMeasured = Math.round(cfg.warmupS * cfg.rate);
const total = firstMeasured + Math.round(cfg.durationS * cfg.rate);
const statuses: Record<string, number> = {};
const latency: number[] = [];
/** How late each request left, against its schedule (the client's own lag). */
const sendLag: number[] = [];
let waitedForSocket = 0;
let outstanding = 0;
let lastAnswer = 0;
let peakSockets = 0;

function send(i: number, due: number): void {
  const get = cfg.paths !== undefined;
  const body = get ? '' : bodyFor(i);
  const timed = i >= firstMeasured;
  outstanding++;
  const options = get
    ? { host: hostname, port, method: 'GET', path: cfg.paths![i % cfg.paths!.length], agent, headers: cfg.headers }
    : { host: hostname, port, method: 'POST', path: cfg.path, agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } };
  const req = http.request(options, (res) => {
    res.resume();
    res.on('end', () => done(String(res.statusCode ?? 0)));
  });
  let finished = false;
  const done = (status: string) => {
    if (finished) return;
    finished = true;
    outstanding--;
    if (!timed) return;
    const now = monoMs();
    statuses[status] = (statuses[status] ?? 0) + 1;
    latency.push(now - due);
    if (status.startsWith('2')) lastAnswer = now;
  };
  req.on('socket', () => {
    if (monoMs() - due > 5) waitedForSocket++;
  });
  req.on('error', () => done('error'));
  if (get) req.end();
  else req.end(body);
  sendLag.push(monoMs() - due);
}

async function main(): Promise<void> {
  const t0 = monoMs();
  const firstTimedAt = t0 + (firstMeasured * 1000) / cfg.rate;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = monoMs();
      while (sent < total && t0 + (sent * 1000) / cfg.rate <= now) {
        if (sent === firstMeasured) console.log('MEASURING ' + JSON.stringify({ first: firstMeasured }));
        send(sent, t0 + (sent * 1000) / cfg.rate);
        sent++;
      }
      let sockets = 0;
      for (const list of Object.values(agent.sockets)) sockets += list?.length ?? 0;
      peakSockets = Math.max(peakSockets, sockets);
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const sentAt = monoMs();
  const offered = (total - firstMeasured) / ((sentAt - firstTimedAt) / 1000);
  while (outstanding > 0 && monoMs() - sentAt < cfg.drainS * 1000) await new Promise((r) => setTimeout(r, 20));
  const ok = Object.entries(statuses).filter(([s]) => s.startsWith('2')).reduce((n, [, c]) => n + c, 0);
  console.log(
    'RESULT ' +
      JSON.stringify({
        firstMeasured, total, offered, statuses, ok, unanswered: outstanding,
        // Timed bookings answered per second, from the first timed send to the last timed answer.
        okPerSecond: ok / (Math.max(lastAnswer, firstTimedAt + 1) - firstTimedAt) * 1000,
        latency: percentiles(latency), sendLag: percentiles(sendLag), waitedForSocket, peakSockets, maxSockets,
      }),
  );
  agent.destroy();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
