/**
 * P4's peer: a bare Socket.IO server with @socket.io/redis-adapter (what
 * Slotwise's fan-out rides on), nothing else. Every client joins room `r`.
 * With `emitRate`, after SIGUSR2 it emits `tick {i, t}` to room `r` at that
 * steady rate for `seconds` (t on CLOCK_MONOTONIC), then prints `DONE {sent}`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { monoMs } from '../lib/clock';
import { workerConfig } from '../lib/config';

const cfg = workerConfig<{ redisUrl: string; emitRate?: number; seconds?: number }>();
const http = createServer();
const pub = new Redis(cfg.redisUrl);
const io = new Server(http, { adapter: createAdapter(pub, pub.duplicate()) });
io.on('connection', (socket) => void socket.join('r'));

process.on('SIGUSR2', () => {
  const rate = cfg.emitRate ?? 0;
  const t0 = monoMs();
  let sent = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((monoMs() - t0) * rate) / 1000) - sent;
    for (let k = 0; k < due; k++) io.to('r').emit('tick', { i: sent++, t: monoMs() });
    if (monoMs() - t0 >= (cfg.seconds ?? 10) * 1000) {
      clearInterval(timer);
      console.log('DONE ' + JSON.stringify({ sent }));
    }
  }, 1);
});

http.listen(0, '127.0.0.1', () => console.log('READY ' + JSON.stringify({ port: (http.address() as AddressInfo).port })));
process.on('SIGTERM', () => process.exit(0));
