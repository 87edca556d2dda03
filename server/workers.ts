/**
 * Background work every node runs: the hold sweeper, the daily slot horizon
 * and key purging. Each is safe to run on all nodes at once (row locks with
 * SKIP LOCKED), so no leader election is needed.
 */
import type { Logger } from './core/ports';
import { expireDueHolds } from './core/services/seats';
import type { ResourceService } from './core/services/resources';
import type { Store } from './core/store';
import type { Db } from './db/pool';
import { userTokenRepository } from './db/repositories/credentials';
import { idempotencyRepository } from './db/repositories/idempotency';

const HOUR = 3_600_000;

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

/** Starts the sweeper (every `sweepMs`), the horizon extension and the key purge (hourly). */
export function startWorkers(opts: { db: Db; background: Store; resources: ResourceService; log: Logger; sweepMs: number }): Workers {
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
  return { stop: async () => void (await Promise.all(stops.map((s) => s()))) };
}
