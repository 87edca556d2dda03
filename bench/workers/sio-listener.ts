/**
 * P4's client: socket.io-client (websocket transport) on the other node.
 * `bare`: records each `tick`'s delay (arrival − t) and prints `RESULT` after
 * `seconds`. `slotwise`: subscribes to resources and records when each
 * `booking.confirmed` arrives, by the booking's metadata.benchKey (the bench
 * pairs them with commit times taken on node A; a booking's first arrival
 * only), and checks the order of delivery: the first deliveries of each `seq`
 * (any event that carries one) should arrive in increasing `seq`. Out of
 * order counts the fewest first deliveries that, taken away, leave the rest
 * in order (their number minus the longest increasing run of seqs), so one
 * early event counts once, not once for each event it overtook. Prints
 * `READY` once subscribed and `RESULT` on SIGUSR2 (or after `seconds`).
 */
import { io } from 'socket.io-client';
import { monoMs } from '../lib/clock';
import { workerConfig } from '../lib/config';
import { percentiles } from '../lib/stats';

const cfg = workerConfig<{ mode: 'bare' | 'slotwise'; url: string; token?: string; resourceIds?: string[]; from?: string; to?: string; seconds: number }>();
const socket = io(cfg.url, { transports: ['websocket'], auth: cfg.token ? { token: cfg.token } : undefined, reconnection: false });
const delays: number[] = [];
const arrivals: [string, number][] = [];
const keysSeen = new Set<string>();

/** Delivery order by seq: first deliveries out of order, the first few arriving after a larger seq, and deliveries of an event seen before. */
const order = { firsts: 0, outOfOrder: 0, behindLarger: 0, redeliveries: 0, examples: [] as { event: string; seq: number; afterSeq: number }[] };
const firstSeqs: number[] = [];
const firstSeen = new Set<number>();
const eventsSeen = new Set<string>();
let maxSeq = -Infinity;

/** Length of the longest strictly increasing subsequence (patience sorting, O(n log n)). */
function longestIncreasing(xs: number[]): number {
  const tails: number[] = [];
  for (const x of xs) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tails[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    tails[lo] = x;
  }
  return tails.length;
}

socket.on('tick', (m: { t: number }) => delays.push(monoMs() - m.t));
socket.on('booking.confirmed', (e: { booking?: { metadata?: { benchKey?: string } } }) => {
  const key = e.booking?.metadata?.benchKey;
  if (key && !keysSeen.has(key)) {
    keysSeen.add(key);
    arrivals.push([key, monoMs()]);
  }
});
socket.onAny((event: string, e: { seq?: unknown; resourceId?: unknown } | undefined) => {
  const seq = e?.seq;
  if (typeof seq !== 'number') return;
  // availability.changed shares its event's seq, once per resource.
  const id = `${event}:${seq}:${event === 'availability.changed' ? String(e?.resourceId) : ''}`;
  if (eventsSeen.has(id)) order.redeliveries++;
  eventsSeen.add(id);
  if (firstSeen.has(seq)) return;
  firstSeen.add(seq);
  firstSeqs.push(seq);
  if (seq < maxSeq) {
    order.behindLarger++;
    if (order.examples.length < 5) order.examples.push({ event, seq, afterSeq: maxSeq });
  }
  maxSeq = Math.max(maxSeq, seq);
});
socket.on('connect_error', (err) => {
  console.error('connect_error', err.message);
  process.exit(1);
});

let reported = false;
function report(): void {
  if (reported) return;
  reported = true;
  order.firsts = firstSeqs.length;
  order.outOfOrder = firstSeqs.length - longestIncreasing(firstSeqs);
  console.log('RESULT ' + JSON.stringify(cfg.mode === 'bare' ? { latency: percentiles(delays) } : { arrivals, order }));
  socket.close();
  process.exit(0);
}
process.on('SIGUSR2', report);

socket.on('connect', async () => {
  if (cfg.mode === 'slotwise') {
    const ack = await socket.timeout(10_000).emitWithAck('subscribe', { resourceIds: cfg.resourceIds, from: cfg.from, to: cfg.to });
    if (!ack.ok) {
      console.error('subscribe failed', JSON.stringify(ack));
      process.exit(1);
    }
  }
  console.log('READY');
  setTimeout(report, cfg.seconds * 1000);
});
