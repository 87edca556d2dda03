/**
 * The server's clock as seen from a client: countdowns (a hold's `expiresAt`)
 * must run on server time, or a client whose clock is a minute off shows a
 * hold a minute longer or shorter than it lives.
 */

/** One reading of the server's clock: the server's time, and when the request left and the answer came back (local ms). */
export interface ClockSample {
  serverMs: number;
  sentAt: number;
  receivedAt: number;
  /** How far from the true server time the reading may be besides the trip (ms): 0 for an exact time, 500 for an HTTP Date header. */
  precisionMs?: number;
}

/**
 * Estimates server time minus local time from samples. Each sample puts the
 * server's clock at the middle of its round trip, give or take half the trip
 * plus its precision; the sample with the smallest uncertainty among the
 * recent ones wins (a slow answer says little about the clock).
 */
export class ServerClock {
  private best: { offset: number; uncertainty: number; at: number } | null = null;
  /** A sample this much older than a new one no longer outranks it (clocks drift). */
  private static readonly STALE_MS = 10 * 60_000;

  constructor(private readonly localNow: () => number = () => Date.now()) {}

  /** Server time minus local time (ms); 0 until a sample arrived. */
  get offsetMs(): number {
    return this.best?.offset ?? 0;
  }

  /** The estimate's uncertainty (ms), or Infinity without a sample. */
  get uncertaintyMs(): number {
    return this.best?.uncertainty ?? Number.POSITIVE_INFINITY;
  }

  /** Server time now, as the client best knows it. */
  now(): number {
    return this.localNow() + this.offsetMs;
  }

  /** Milliseconds from server-now until `iso` (negative once past). */
  msUntil(iso: string): number {
    return Date.parse(iso) - this.now();
  }

  /** Adds a reading of the server's clock. */
  sample(s: ClockSample): void {
    if (!Number.isFinite(s.serverMs) || !(s.receivedAt >= s.sentAt)) return;
    const trip = s.receivedAt - s.sentAt;
    const offset = s.serverMs - (s.sentAt + trip / 2);
    const uncertainty = trip / 2 + (s.precisionMs ?? 0);
    const stale = this.best !== null && s.receivedAt - this.best.at > ServerClock.STALE_MS;
    if (this.best === null || stale || uncertainty <= this.best.uncertainty) this.best = { offset, uncertainty, at: s.receivedAt };
  }

  /** Adds the reading of an HTTP `Date` header (whole seconds: the server's time lies in [date, date + 1 s)). */
  sampleDateHeader(date: string | null, sentAt: number, receivedAt: number): void {
    if (!date) return;
    const ms = Date.parse(date);
    if (Number.isFinite(ms)) this.sample({ serverMs: ms + 500, sentAt, receivedAt, precisionMs: 500 });
  }
}
