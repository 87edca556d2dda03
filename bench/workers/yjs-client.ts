/**
 * P5's clients, one script for both servers: Slotwise's gateway driven by the
 * stock y-websocket WebsocketProvider, Hocuspocus by its own provider.
 *
 * mode `edits`: a writer on one node and a reader on the other. The writer
 *   makes one edit per Yjs transaction (append `|seq:` to the notes text,
 *   trimming it so it stays short) at each step's rate; the reader times each
 *   edit's arrival. Prints `RESULT {steps: [{rate, sent, received, achieved, p50, p99}]}`;
 *   a step whose p99 passes `stopAboveMs` (or that loses edits) ends the ramp
 *   (with `retryOnce`, the first such step is run once more first).
 * mode `idle`: `count` clients join one document, set a presence, and stay
 *   connected until SIGTERM (prints `READY {connected}`).
 */
import { HocuspocusProvider } from '@hocuspocus/provider';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { monoMs } from '../lib/clock';
import { workerConfig } from '../lib/config';
import { mark } from '../lib/marks';
import { percentiles } from '../lib/stats';

interface Endpoint {
  url: string;
  token?: string;
}
interface Config {
  mode: 'edits' | 'idle';
  system: 'slotwise' | 'hocuspocus';
  docName: string;
  writer?: Endpoint;
  reader?: Endpoint;
  steps?: { rate: number; seconds: number }[];
  stopAboveMs?: number;
  /** Run the first failing step once more before ending the ramp. */
  retryOnce?: boolean;
  idle?: Endpoint & { count: number; concurrency: number };
}

const cfg = workerConfig<Config>();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Client {
  doc: Y.Doc;
  synced: Promise<void>;
  awareness: { setLocalStateField(k: string, v: unknown): void };
  destroy(): void;
}

function connect(at: Endpoint): Client {
  const doc = new Y.Doc();
  let markSynced!: () => void;
  const synced = new Promise<void>((r) => (markSynced = r));
  if (cfg.system === 'slotwise') {
    const p = new WebsocketProvider(`${at.url.replace(/^http/, 'ws')}/yjs`, cfg.docName, doc, {
      params: { token: at.token! },
      WebSocketPolyfill: WebSocket as never,
      disableBc: true,
    });
    p.on('sync', (s: boolean) => s && markSynced());
    return { doc, synced, awareness: p.awareness, destroy: () => p.destroy() };
  }
  const p = new HocuspocusProvider({ url: at.url.replace(/^http/, 'ws'), name: cfg.docName, document: doc, WebSocketPolyfill: WebSocket, onSynced: () => markSynced() } as never);
  return { doc, synced, awareness: p.awareness!, destroy: () => p.destroy() };
}

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`timed out: ${what}`)))]);

async function edits(): Promise<void> {
  const writer = connect(cfg.writer!);
  const reader = connect(cfg.reader!);
  await within(Promise.all([writer.synced, reader.synced]), 20_000, 'providers syncing');
  const sentAt = new Map<number, number>();
  const latency = new Map<number, number>();
  const text = writer.doc.getText('notes');
  reader.doc.getText('notes').observe((event) => {
    const now = monoMs();
    for (const d of event.delta) {
      if (typeof d.insert !== 'string') continue;
      for (const m of d.insert.matchAll(/\|(\d+):/g)) {
        const seq = Number(m[1]);
        const t = sentAt.get(seq);
        if (t !== undefined && !latency.has(seq)) latency.set(seq, now - t);
      }
    }
  });
  let seq = 0;
  const edit = () => {
    const n = seq++;
    sentAt.set(n, monoMs());
    writer.doc.transact(() => {
      text.insert(text.length, `|${n}:`);
      if (text.length > 3000) text.delete(0, text.length - 1000);
    });
  };
  // The path works end to end before anything is timed.
  edit();
  await within((async () => { while (!latency.has(0)) await sleep(10); })(), 20_000, 'first edit reaching the reader');

  const steps = [];
  // With retryOnce, the first step that fails is run once more before the ramp ends: one 3 s step
  // decides the figure, and a single spike (a collection, a scheduling hiccup) is not a sustained rate.
  let retried = !cfg.retryOnce;
  for (let i = 0; i < cfg.steps!.length; i++) {
    const step = cfg.steps![i]!;
    const first = seq;
    const t0 = monoMs();
    mark(`${cfg.system}-step-${steps.length}-${step.rate}:start`);
    const end = t0 + step.seconds * 1000;
    while (monoMs() < end) {
      const due = Math.floor(((monoMs() - t0) * step.rate) / 1000) - (seq - first);
      for (let i = 0; i < due; i++) edit();
      await sleep(2);
    }
    mark(`${cfg.system}-step-${steps.length}-${step.rate}:end`);
    const sent = seq - first;
    const achieved = sent / ((monoMs() - t0) / 1000);
    await sleep(1000);
    const lat: number[] = [];
    for (let s = first; s < seq; s++) {
      const l = latency.get(s);
      if (l !== undefined) lat.push(l);
    }
    const p = percentiles(lat);
    steps.push({ rate: step.rate, sent, received: lat.length, achieved, p50: p.p50, p99: p.p99 });
    process.stderr.write(`step ${step.rate}/s: sent ${sent}, received ${lat.length}, p50 ${p.p50.toFixed(1)}, p99 ${p.p99.toFixed(1)} ms\n`);
    if (cfg.stopAboveMs !== undefined && (p.p99 > cfg.stopAboveMs || lat.length < sent * 0.99)) {
      if (retried) break;
      retried = true;
      i--;
    }
  }
  console.log('RESULT ' + JSON.stringify({ steps }));
  writer.destroy();
  reader.destroy();
}

async function idle(): Promise<void> {
  const at = cfg.idle!;
  const clients: Client[] = [];
  let synced = 0;
  // Open them `concurrency` at a time (each batch given a moment to sync), then wait for all to sync, up to a deadline.
  for (let i = 0; i < at.count; i += at.concurrency) {
    const batch = Array.from({ length: Math.min(at.concurrency, at.count - i) }, () => connect(at));
    batch.forEach((c, j) => {
      c.awareness.setLocalStateField('user', { name: `user ${i + j}` });
      void c.synced.then(() => synced++);
    });
    clients.push(...batch);
    await Promise.race([Promise.all(batch.map((c) => c.synced)), sleep(5_000)]);
  }
  const deadline = Date.now() + 90_000;
  while (synced < clients.length && Date.now() < deadline) await sleep(100);
  console.log('READY ' + JSON.stringify({ connected: clients.length, synced }));
  process.on('SIGTERM', () => {
    for (const c of clients) c.destroy();
    process.exit(0);
  });
}

(cfg.mode === 'edits' ? edits() : idle()).catch((err) => {
  console.error(err);
  process.exit(1);
});
