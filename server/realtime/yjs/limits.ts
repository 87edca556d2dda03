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
}

const KiB = 1024;

/** The defaults. */
export const YJS_LIMITS: Readonly<YjsLimits> = Object.freeze({
  maxUpdateBytes: 64 * KiB,
  // A stock client's presence is a name, a colour and a cursor: a few hundred bytes.
  maxPresenceBytes: 4 * KiB,
});

/** The defaults with `overrides` applied. */
export const yjsLimits = (overrides: Partial<YjsLimits> = {}): YjsLimits => ({ ...YJS_LIMITS, ...overrides });

/** `bytes` as "N KiB" for close reasons and log lines. */
export const kib = (bytes: number): string => `${Math.round(bytes / KiB)} KiB`;
