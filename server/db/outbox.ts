/**
 * The outbox relay: numbers committed events (in commit order) and publishes
 * them. Committing requests call `flush` so the feed is current when they
 * answer; a timer catches anything a crashed node left unnumbered, and claims
 * numbered events whose publisher died before marking them published.
 */
import type { Logger, Outbox } from '../core/ports';
import type { Db } from './pool';
import { eventRepository, type EventRow } from './repositories/events';

const BATCH = 1000;

export type Publisher = (events: EventRow[]) => Promise<void>;

export class OutboxRelay implements Outbox {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private publisher: Publisher = async () => {};
  private readonly listeners: ((events: EventRow[]) => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly strandedAfterMs = 2_000,
  ) {}

  /** Sets who receives each batch of newly numbered events (the live fan-out). */
  setPublisher(fn: Publisher): void {
    this.publisher = fn;
  }

  /** Adds an in-process listener that sees each numbered batch before it is published (it must not throw). */
  addListener(fn: (events: EventRow[]) => void): void {
    this.listeners.push(fn);
  }

  private async hand(events: EventRow[]): Promise<void> {
    for (const fn of this.listeners) fn(events);
    await this.publisher(events);
  }

  /**
   * Resolves once every event committed before the call is numbered and
   * published. Calls made while a pass runs share one follow-up pass, so a
   * burst of commits costs a few passes, not one each. Never rejects.
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
    this.timer = setInterval(() => {
      void this.flush();
      void this.rescueStranded();
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.queued;
    await this.running;
    await Promise.all(this.marking);
  }

  private async pass(): Promise<void> {
    try {
      for (;;) {
        const events = await eventRepository.sequence(this.db.relayPool, BATCH);
        if (events.length === 0) return;
        await this.hand(events);
        // Marking is bookkeeping for the stranded-event rescue: nobody waiting on a flush needs it done,
        // so it runs behind (a failed mark means the rescue re-emits the batch: at least once, as promised).
        this.behind(eventRepository.markPublished(this.db.relayPool, events.map((e) => e.seq)));
        if (events.length < BATCH) return;
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'outbox pass failed; the timer retries');
    }
  }

  private readonly marking = new Set<Promise<void>>();
  private behind(p: Promise<void>): void {
    const tracked = p.catch((err) => this.log.warn({ err: (err as Error).message }, 'marking events published failed; they will be re-emitted'));
    this.marking.add(tracked);
    void tracked.finally(() => this.marking.delete(tracked));
  }

  /** Publishes events another node numbered but never published (it died in between). */
  private async rescueStranded(): Promise<void> {
    try {
      await this.db.background.tx(async (q) => {
        const events = await eventRepository.lockStranded(q, this.strandedAfterMs, BATCH);
        if (events.length === 0) return;
        this.log.info({ count: events.length, first: events[0]!.seq }, 'publishing events a failed node left behind');
        await this.hand(events);
        await eventRepository.markPublished(q, events.map((e) => e.seq));
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'stranded-event rescue failed; the timer retries');
    }
  }
}
