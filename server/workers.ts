/**
 * Background work every node runs: the hold sweeper, the daily slot horizon
 * and key purging. Each is safe to run on all nodes at once (row locks with
 * SKIP LOCKED), so no leader election is needed.
 */
import type { JobQueue, Logger } from './core/ports';
import type { WebhookService } from './core/services/webhooks';
import type { MailService } from './core/services/mail';
import { expireDueHolds } from './core/services/seats';
import type { ResourceService } from './core/services/resources';
import type { Store } from './core/store';
import { capturePending, type PaymentFlow } from './core/services/payments';
import type { Db } from './db/pool';
import { userTokenRepository } from './db/repositories/credentials';
import { idempotencyRepository } from './db/repositories/idempotency';

const HOUR = 3_600_000;
/** Sent (or given up) e-mails, and delivered webhook deliveries, are kept this long, then purged. */
const KEPT_MS = 30 * 24 * HOUR;

export interface Workers {
  stop(): Promise<void>;
}

const MAX_BACKOFF_MS = 10_000;

/**
 * A loop that runs `fn`, then waits `everyMs`, until stopped; never two runs
 * at once. While it keeps failing (the database is down) it backs off and
 * logs once per outage, not once per tick.
 */
function loop(name: string, everyMs: number, fn: () => Promise<unknown>, log: Logger) {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let current: Promise<unknown> = Promise.resolve();
  let failures = 0;
  const tick = () => {
    current = fn()
      .then(() => {
        if (failures > 0) log.info({ worker: name, failures }, 'background work recovered');
        failures = 0;
      })
      .catch((err) => {
        if (failures === 0) log.warn({ err: (err as Error).message, worker: name }, 'background work failed; retrying with backoff');
        failures++;
      })
      .finally(() => {
        const wait = failures === 0 ? everyMs : Math.min(MAX_BACKOFF_MS, everyMs * 2 ** Math.min(failures, 10));
        if (!stopped) timer = setTimeout(tick, Math.max(everyMs, wait));
      });
  };
  tick();
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await current;
  };
}

export interface IntegrationWork {
  jobs: JobQueue & { start(): Promise<unknown> };
  webhooks: WebhookService;
  /** How often stored events are looked for (and turned into deliveries), and due retries. */
  pollMs: number;
  deliverJob: string;
  concurrency: number;
  /** E-mail: the dispatcher and this node's sender, and the reminders. */
  mail: MailService;
}

/**
 * Starts the sweeper (every `sweepMs`), the horizon extension and the key
 * purge (hourly), and the integrations: the webhook dispatcher and retry
 * sweep (every `pollMs`, on whichever node gets the cursor) and this node's
 * delivery workers; e-mail's dispatcher and sender, and its reminder pass.
 */
export function startWorkers(opts: {
  db: Db; background: Store; resources: ResourceService; log: Logger; sweepMs: number; integrations?: IntegrationWork;
  /** Payments: the capture sweep (absent: PAYMENT_PROVIDER=none). */
  payments?: { flow: PaymentFlow; retryMs: number };
}): Workers {
  const { db, background, resources, log } = opts;
  const sweep = async () => {
    // Drain in batches: a burst of expiries is cleared in one tick.
    for (;;) {
      const expired = await background.tx((t) => expireDueHolds(t, 200));
      if (expired.length === 0) return;
      log.debug({ count: expired.length }, 'holds expired');
      if (expired.length < 200) return;
    }
  };
  const stops = [
    loop('hold-sweeper', opts.sweepMs, sweep, log),
    loop('slot-horizon', HOUR, async () => {
      const n = await resources.extendHorizon();
      if (n > 0) {
        log.info({ schedules: n }, 'slot horizon extended');
      }
    }, log),
    loop('idempotency-purge', HOUR, () => idempotencyRepository.purge(db.backgroundPool), log),
    loop('token-purge', HOUR, () => userTokenRepository.purgeExpired(db.backgroundPool), log),
  ];
  // Payments: captures that failed (capture_pending) or never ran (a node died after commit) are retried.
  const pay = opts.payments;
  if (pay?.flow.enabled) {
    stops.push(loop('payment-captures', Math.max(50, Math.floor(pay.retryMs / 2)), async () => {
      const n = await capturePending(background, pay.flow, pay.retryMs);
      if (n > 0) log.info({ bookings: n }, 'payment captures retried');
    }, log));
  }
  const i = opts.integrations;
  if (i) {
    let working: Promise<void> | null = null;
    // The queue's tables are made on first start; until then (or while the database is away) this keeps trying.
    const ensureWorkers = () => (working ??= (async () => {
      await i.jobs.start();
      await i.jobs.work(i.deliverJob, i.concurrency, async (data) => {
        if (typeof data.endpointId === 'string') await i.webhooks.deliver(data.endpointId);
      });
    })().catch((err) => {
      working = null;
      throw err;
    }));
    stops.push(loop('webhook-dispatch', i.pollMs, async () => {
      await ensureWorkers();
      // Drain: a burst of events is turned into deliveries in one tick.
      while ((await i.webhooks.dispatch(1000)) === 1000);
    }, log));
    stops.push(loop('webhook-retries', Math.max(i.pollMs, 1000), async () => {
      await ensureWorkers();
      await i.webhooks.sweep();
    }, log));
    // E-mail: new messages from the feed, then whatever is due (new, retries, those a dead node left), until none is.
    stops.push(loop('mail', i.pollMs, async () => {
      while ((await i.mail.dispatch(1000)) === 1000);
      while ((await i.mail.sendDue()).full);
    }, log));
    stops.push(loop('mail-reminders', Math.max(i.pollMs, 1000), () => i.mail.remind(), log));
    stops.push(loop('mail-purge', HOUR, () => i.mail.purge(KEPT_MS), log));
    stops.push(loop('webhook-purge', HOUR, () => i.webhooks.purge(KEPT_MS), log));
  }
  return { stop: async () => void (await Promise.all(stops.map((s) => s()))) };
}
