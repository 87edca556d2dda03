/**
 * The outbox relay: numbers committed events (in commit order) and hands them
 * to listeners. Committing requests call `flush` so the feed is current when
 * they answer; a timer catches anything a crashed node left unnumbered.
 */
import type { Logger, Outbox } from '../core/ports';
import type { Db } from './pool';
import { eventRepository, type EventRow } from './repositories/events';

const BATCH = 1000;

export class OutboxRelay implements Outbox {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners: ((events: EventRow[]) => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {}

  /** Calls fn with each batch of newly numbered events. */
  onEvents(fn: (events: EventRow[]) => void): void {
    this.listeners.push(fn);
  }

  /**
   * Resolves once every event committed before the call is numbered. Calls
   * made while a pass runs share one follow-up pass, so a burst of commits
   * costs a few passes, not one each. Never rejects: the timer retries.
   */
  flush(): Promise<void> {
    if (!this.running) {
      this.running = this.pass().finally(() => (this.running = null));
      return this.running;
    }
    this.queued ??= this.running.then(() => {
      this.queued = null;
      return this.flush();
    });
    return this.queued;
  }

  /** Starts the safety-net timer. */
  start(intervalMs = 500): void {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.queued;
    await this.running;
  }

  private async pass(): Promise<void> {
    try {
      for (;;) {
        const events = await eventRepository.sequence(this.db.pool, BATCH);
        if (events.length === 0) return;
        for (const fn of this.listeners) {
          try {
            fn(events);
          } catch (err) {
            this.log.error({ err }, 'event listener failed');
          }
        }
        if (events.length < BATCH) return;
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'outbox pass failed; the timer retries');
    }
  }
}
