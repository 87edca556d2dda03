/** The y-websocket message framing the gateway speaks (the stock WebsocketProvider's). */
import * as encoding from 'lib0/encoding';
import { encodeAwarenessUpdate, type Awareness } from 'y-protocols/awareness';
import type { RawData } from 'ws';

export const MESSAGE_SYNC = 0;
export const MESSAGE_AWARENESS = 1;
export const MESSAGE_QUERY_AWARENESS = 3;

/** A sync message (type 0) whose body `write` encodes. */
export const syncMessage = (write: (e: encoding.Encoder) => void): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MESSAGE_SYNC);
  write(e);
  return encoding.toUint8Array(e);
};

/** An awareness message (type 1) with the states of `ids`. */
export const awarenessMessage = (awareness: Awareness, ids: number[]): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MESSAGE_AWARENESS);
  encoding.writeVarUint8Array(e, encodeAwarenessUpdate(awareness, ids));
  return encoding.toUint8Array(e);
};

/** A received frame as one Uint8Array over its bytes. */
export const toBytes = (data: RawData): Uint8Array => {
  const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
};
