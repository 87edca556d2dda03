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
   * Resolves once every event committed before the call is numbered (in the
   * feed); its publication follows right behind, batch after batch in seq
   * order, without the caller waiting for it. Calls made while a pass runs
   * share one follow-up pass, so a burst of commits costs a few passes, not
   * one each. Never rejects.
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
    while (this.publishing) await this.publishing;
  }

  private async pass(): Promise<void> {
    try {
      for (;;) {
        const events = await eventRepository.sequence(this.db.relayPool, BATCH);
        if (events.length === 0) return;
        // Listeners (cache invalidation) see the batch before the flush resolves.
        for (const fn of this.listeners) fn(events);
        this.publish(events);
        if (events.length < BATCH) return;
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'outbox pass failed; the timer retries');
    }
  }

  /**
   * Publishing runs behind the passes, one batch after the other in seq order:
   * a request that committed waits for its event to be numbered, not for the
   * slot read and emit of availability.changed (a round trip and more per
   * request under load in the bench). A batch whose publish or mark fails
   * stays unpublished and the stranded-event rescue re-emits it: at least
   * once, as before.
   */
  private readonly unpublished: EventRow[] = [];
  private publishing: Promise<void> | null = null;
  private publish(events: EventRow[]): void {
    this.unpublished.push(...events);
    this.publishing ??= this.drainPublishing();
  }

  private async drainPublishing(): Promise<void> {
    try {
      // Whatever was numbered meanwhile goes out together (in seq order: passes run one at a time).
      while (this.unpublished.length) {
        const batch = this.unpublished.splice(0, BATCH);
        try {
          await this.publisher(batch);
          await eventRepository.markPublished(this.db.relayPool, batch.map((e) => e.seq));
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'publishing a batch failed; the stranded-event rescue re-emits it');
        }
      }
    } finally {
      // No await between the last check and here: a publish() after this starts a new drain.
      this.publishing = null;
    }
  }

  /** Publishes events another node numbered but never published (it died in between). */
  private async rescueStranded(): Promise<void> {
    try {
      await this.db.tx(async (q) => {
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
