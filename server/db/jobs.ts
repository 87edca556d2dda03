/**
 * The job queue: pg-boss on the node's own database (its tables in the
 * `pgboss` schema, made by pg-boss itself on start, safely when nodes start
 * together), over the node's background pool.
 *
 * Queues use pg-boss's `short` policy: per key at most one job waits
 * (sending another while one waits is a no-op), any number may run; a
 * handler that must run alone per key says so itself (webhook delivery takes
 * a lease on its endpoint). (pg-boss 10's `stately` policy, one running per
 * key, lets a waiting job of a busy key block every fetch of its queue.) A job whose node dies stays `active` until its
 * expiry (`expireSeconds`), when pg-boss's maintenance (every
 * `maintenanceSeconds`, on whichever node) puts it back for a retry: work is
 * never lost, and handlers are written to be run again (they read what is
 * left to do from the database).
 */
import PgBoss from 'pg-boss';
import type pg from 'pg';
import type { JobQueue, Logger } from '../core/ports';

export interface JobQueueOptions {
  pool: pg.Pool;
  log: Logger;
  /** A job running longer than this (or whose node died) is retried. */
  expireSeconds: number;
  /** How often expired jobs are looked for (and old ones archived). */
  maintenanceSeconds: number;
  /** How often an idle worker asks for a job (a send on this node wakes its workers at once). */
  pollingSeconds: number;
}

export interface JobStats {
  /** Jobs by queue and state (created, retry, active, completed, failed, cancelled). */
  byState: { queue: string; state: string; count: number }[];
}

export class PgJobQueue implements JobQueue {
  private readonly boss: PgBoss;
  private readonly queues = new Map<string, Promise<void>>();
  private readonly workers = new Map<string, string[]>();
  private started: Promise<unknown> | null = null;

  constructor(private readonly opts: JobQueueOptions) {
    this.boss = new PgBoss({
      db: { executeSql: (text: string, values: unknown[]) => opts.pool.query(text, values as unknown[]) },
      maintenanceIntervalSeconds: opts.maintenanceSeconds,
      monitorStateIntervalSeconds: Math.max(10, opts.maintenanceSeconds),
      expireInSeconds: opts.expireSeconds,
      // Handlers are safe to run again; a job that keeps failing stays visible (and counted) as failed.
      retryLimit: 20,
      retryDelay: 1,
      retryBackoff: true,
      schedule: false,
    });
    this.boss.on('error', (err: Error) => opts.log.warn({ err: err.message }, 'job queue error'));
  }

  start(): Promise<unknown> {
    return (this.started ??= this.boss.start());
  }

  private queue(name: string): Promise<void> {
    let q = this.queues.get(name);
    if (!q) {
      q = (async () => {
        await this.start();
        if (!(await this.boss.getQueue(name))) {
          await this.boss.createQueue(name, { name, policy: 'short', expireInSeconds: this.opts.expireSeconds, retryLimit: 20, retryDelay: 1, retryBackoff: true })
            .catch(async (err) => {
              // Another node made it first.
              if (!(await this.boss.getQueue(name))) throw err;
            });
        }
      })();
      q.catch(() => this.queues.delete(name));
      this.queues.set(name, q);
    }
    return q;
  }

  async send(name: string, data: object, opts: { key?: string } = {}): Promise<void> {
    await this.queue(name);
    const id = await this.boss.send(name, data, opts.key ? { singletonKey: opts.key } : {});
    // A job for this node's workers: wake them now rather than at their next poll.
    if (id) for (const w of this.workers.get(name) ?? []) this.boss.notifyWorker(w);
  }

  async work(name: string, concurrency: number, handler: (data: Record<string, unknown>) => Promise<void>): Promise<void> {
    await this.queue(name);
    const ids: string[] = [];
    for (let i = 0; i < concurrency; i++) {
      ids.push(await this.boss.work<Record<string, unknown>>(name, { pollingIntervalSeconds: this.opts.pollingSeconds, batchSize: 1 }, async ([job]) => {
        if (job) await handler(job.data);
      }));
    }
    this.workers.set(name, [...(this.workers.get(name) ?? []), ...ids]);
  }

  /** Jobs by queue and state, for /metrics. */
  async stats(): Promise<JobStats> {
    if (!this.started) return { byState: [] };
    const { rows } = await this.opts.pool.query('SELECT name, state::text AS state, count(*)::int AS n FROM pgboss.job GROUP BY 1, 2');
    return { byState: rows.map((r) => ({ queue: r.name as string, state: r.state as string, count: r.n as number })) };
  }

  /** Stops fetching; waits (up to `graceMs`) for running jobs to finish; what is left runs again elsewhere after its expiry. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.started) return;
    await this.started.catch(() => {});
    await this.boss.stop({ graceful: true, wait: true, timeout: graceMs, close: false }).catch(() => {});
  }
}
