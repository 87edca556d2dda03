/**
 * Socket.IO clients for in-process test nodes: `connect()` opens one that
 * records every event it receives, and `checkOrderAndChains()` checks what a
 * subscriber received against the feed's promises (first deliveries in seq
 * order, each message naming its resource's previous one). Each test file
 * keeps its own list of sockets (`sockets`) and disconnects them in afterAll.
 */
import { io, type Socket } from 'socket.io-client';

export interface Received {
  type: string;
  seq: number;
  payload: any;
}

export interface LiveConnection {
  socket: Socket;
  received: Received[];
  /** Emits `event` with `payload` and resolves with the ack (rejects after `ackTimeoutMs`). */
  call(event: string, payload: unknown): Promise<any>;
}

/**
 * A socket.io-client connected to a node, recording every event it receives
 * (and dropping those `lose` picks, as if the bus had lost them). The socket
 * is added to `sockets` so the caller can disconnect it when done.
 */
export async function connect(
  url: string, token: string, sockets: Socket[], opts: { lose?: (r: Received) => boolean; ackTimeoutMs?: number } = {},
): Promise<LiveConnection> {
  const { lose = () => false, ackTimeoutMs = 5_000 } = opts;
  const socket = io(url, { auth: { token }, transports: ['websocket'], reconnection: false });
  sockets.push(socket);
  const received: Received[] = [];
  socket.onAny((type, payload) => {
    const r = { type, seq: payload?.seq, payload };
    if (!lose(r)) received.push(r);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  const call = (event: string, payload: unknown) => socket.timeout(ackTimeoutMs).emitWithAck(event, payload) as Promise<any>;
  return { socket, received, call };
}

/** The resource → previous-seq pairs a live message names (`prevSeqs` of a domain event, `prevSeq` of availability.changed). */
export function prevsOf(r: Received): [string, number][] {
  if (r.type === 'availability.changed') return [[r.payload.resourceId, r.payload.prevSeq]];
  return Object.entries(r.payload?.prevSeqs ?? {}) as [string, number][];
}

/**
 * Checks what one subscriber received: first deliveries in seq order, and
 * per resource a chain in which each message names the seq of the one before
 * (the first names at most the seq the subscribe answered). Returns the
 * out-of-order seqs and the resources whose chain broke (a missed event).
 */
export function checkOrderAndChains(received: Received[], startSeq: number): { outOfOrder: number[]; broken: string[] } {
  const outOfOrder: number[] = [];
  let last = 0;
  const seen = new Set<number>();
  for (const r of received) {
    if (typeof r.seq !== 'number' || r.type === 'availability.changed' || seen.has(r.seq)) continue;
    seen.add(r.seq);
    if (r.seq < last) outOfOrder.push(r.seq);
    last = Math.max(last, r.seq);
  }
  const head = new Map<string, number>();
  const broken: string[] = [];
  for (const r of received) {
    for (const [resourceId, prev] of prevsOf(r)) {
      const before = head.get(resourceId);
      // availability.changed repeats its event's seq: it names the same previous position.
      if (before === r.seq) continue;
      if (before === undefined ? prev > startSeq : prev !== before) broken.push(`${resourceId}@${r.seq} names ${prev}, last seen ${before ?? `≤${startSeq}`}`);
      head.set(resourceId, r.seq);
    }
  }
  return { outOfOrder, broken };
}
