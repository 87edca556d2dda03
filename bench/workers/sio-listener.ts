/**
 * P4's client: socket.io-client (websocket transport) on the other node.
 * `bare`: records each `tick`'s delay (arrival − t). `slotwise`: subscribes to
 * resources and records when each `booking.confirmed` arrives, by the
 * booking's metadata.benchKey (the bench pairs them with commit times taken on
 * node A). Prints `READY` once listening and `RESULT` after `seconds`.
 */
import { io } from 'socket.io-client';
import { monoMs } from '../lib/clock';
import { workerConfig } from '../lib/config';
import { percentiles } from '../lib/stats';

const cfg = workerConfig<{ mode: 'bare' | 'slotwise'; url: string; token?: string; resourceIds?: string[]; from?: string; to?: string; seconds: number }>();
const socket = io(cfg.url, { transports: ['websocket'], auth: cfg.token ? { token: cfg.token } : undefined, reconnection: false });
const delays: number[] = [];
const arrivals: [string, number][] = [];

socket.on('tick', (m: { t: number }) => delays.push(monoMs() - m.t));
socket.on('booking.confirmed', (e: { booking?: { metadata?: { benchKey?: string } } }) => {
  const key = e.booking?.metadata?.benchKey;
  if (key) arrivals.push([key, monoMs()]);
});
socket.on('connect_error', (err) => {
  console.error('connect_error', err.message);
  process.exit(1);
});
socket.on('connect', async () => {
  if (cfg.mode === 'slotwise') {
    const ack = await socket.timeout(10_000).emitWithAck('subscribe', { resourceIds: cfg.resourceIds, from: cfg.from, to: cfg.to });
    if (!ack.ok) {
      console.error('subscribe failed', JSON.stringify(ack));
      process.exit(1);
    }
  }
  console.log('READY');
  setTimeout(() => {
    console.log('RESULT ' + JSON.stringify(cfg.mode === 'bare' ? { latency: percentiles(delays) } : { arrivals }));
    socket.close();
    process.exit(0);
  }, cfg.seconds * 1000);
});
