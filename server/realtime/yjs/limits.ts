/**
 * The bounds one Yjs client or document may reach, with their defaults. The
 * gateway and the registry each take a partial override (options, not
 * environment variables: configuration wires them in one place).
 */

export interface YjsLimits {
  /** The largest document update (an update, or a client's sync step 2) and the largest awareness message, in bytes. */
  maxUpdateBytes: number;
  /** The largest presence (awareness) state one client may publish, as JSON text, in bytes. */
  maxPresenceBytes: number;
  /** The largest encoded document; a client update that would take it past this is refused (4413). */
  maxDocBytes: number;
  /** Compact a document's stored rows once this many bytes were stored (by any node) since this node last compacted it. */
  compactAfterBytes: number;
  /** Messages of any kind one connection may send: sustained per second, and in a burst. */
  messagesPerSecond: number;
  messageBurst: number;
  /** Update bytes one connection may send (plus answers it asks for beyond its first sync): sustained per minute, and in a burst. */
  updateBytesPerMinute: number;
  updateByteBurst: number;
  /** Presence changes of one connection applied: per second, and in a burst (quicker ones are coalesced, the latest wins). */
  presencePerSecond: number;
  presenceBurst: number;
  /** Bytes received from one connection and not handled yet before reading from it pauses. */
  maxQueuedBytes: number;
  /** Bytes waiting to be sent to one connection before it is closed as a slow consumer (1008). */
  maxUnreadBytes: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The defaults. Document sizes measured with Y.encodeStateAsUpdate: 1,000
 * participants with ordinary names and e-mails and 20,000 characters of notes,
 * 177 KiB; the same notes typed one character at a time at random places,
 * 331 KiB more (so 512 KiB would not hold a busy full document); every text
 * field of shared/group-doc.ts's LIMITS at its maximum length in ASCII,
 * 835 KiB. 2 MiB holds that fullest document with over a megabyte of editing
 * history to spare (every field at its maximum in three-byte characters,
 * 2.3 MiB, does not fit).
 */
export const YJS_LIMITS: Readonly<YjsLimits> = Object.freeze({
  maxUpdateBytes: 64 * KiB,
  // A stock client's presence is a name, a colour and a cursor: a few hundred bytes.
  maxPresenceBytes: 4 * KiB,
  maxDocBytes: 2 * MiB,
  compactAfterBytes: 256 * KiB,
  // A fast typist sends about 20 messages a second (an update and a cursor move per key).
  messagesPerSecond: 50,
  messageBurst: 100,
  // Typing is bytes a second; a paste or an offline session's sync step 2 (at most maxUpdateBytes) fits the burst.
  updateBytesPerMinute: 1 * MiB,
  updateByteBurst: 256 * KiB,
  presencePerSecond: 10,
  presenceBurst: 20,
  maxQueuedBytes: 256 * KiB,
  // More than the largest answer (a whole document in sync step 2) plus what follows it to a slow link.
  maxUnreadBytes: 4 * MiB,
});

/** The defaults with `overrides` applied. */
export const yjsLimits = (overrides: Partial<YjsLimits> = {}): YjsLimits => ({ ...YJS_LIMITS, ...overrides });

/** `bytes` as "N KiB" for close reasons and log lines. */
export const kib = (bytes: number): string => `${Math.round(bytes / KiB)} KiB`;
