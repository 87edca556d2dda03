/** Composition root of one Slotwise node: database, services, HTTP app, workers. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import pino from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Config } from './config';
import type { CoreDeps, Logger } from './core/ports';
import { availabilityService } from './core/services/availability';
import { bookingService } from './core/services/bookings';
import { eventService } from './core/services/events';
import { holdService } from './core/services/holds';
import { resourceService } from './core/services/resources';
import { resolveSecrets, tenantService } from './core/services/tenants';
import type { Clock } from './core/types';
import { migrate } from './db/migrate';
import { OutboxRelay } from './db/outbox';
import { Db } from './db/pool';
import { createHttpApp } from './http/app';
import { startWorkers, type Workers } from './workers';

export const VERSION = '0.1.0';

export interface NodeOptions {
  config: Config & { databaseUrl: string };
  log?: Logger;
  clock?: Clock;
}

export interface SlotwiseNode {
  /** The Hono app (for in-process requests). */
  app: ReturnType<typeof createHttpApp>;
  db: Db;
  /** Development credentials, when the node made or found them. */
  dev?: { adminToken: string; tenantId: string; apiKey: string };
  adminToken: string;
  /** Starts HTTP on `port` (0 = any) and the workers; resolves with the bound port. */
  listen(port: number, host?: string): Promise<number>;
  /** Drains in-flight requests, stops workers, closes the pool. */
  stop(): Promise<void>;
}

/** Builds one node: migrates, resolves secrets, wires services and the app. */
export async function createNode(opts: NodeOptions): Promise<SlotwiseNode> {
  const { config } = opts;
  const log = opts.log ?? pino({ level: config.logLevel, base: { node: config.nodeId } });
  const clock = opts.clock ?? { now: () => Date.now() };
  const db = new Db(config.databaseUrl, {
    readUrl: config.databaseReadUrl,
    max: config.dbPoolSize,
    onError: (err) => log.warn({ err: err.message }, 'idle database connection lost'),
  });
  await migrate(db.pool);
  const outbox = new OutboxRelay(db, log);
  const deps: CoreDeps = {
    store: db,
    outbox,
    clock,
    config: { holdTtlSeconds: config.holdTtlSeconds, holdMinTtlSeconds: config.holdMinTtlSeconds, slotHorizonDays: config.slotHorizonDays },
    log,
  };
  const secrets = await resolveSecrets(deps, { adminToken: config.adminToken, jwtSecret: config.jwtSecret });
  const services = {
    tenants: tenantService(deps, secrets),
    resources: resourceService(deps),
    availability: availabilityService(deps),
    holds: holdService(deps),
    bookings: bookingService(deps),
    events: eventService(deps),
  };
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const readiness = {
    async check() {
      const pgOk = await db.pool.query('SELECT 1').then(() => 'ok' as const, (e: Error) => e.message);
      return { postgres: pgOk };
    },
  };
  const app = createHttpApp({ db, services, registry, readiness, log, version: VERSION });

  let server: Server | null = null;
  let workers: Workers | null = null;
  return {
    app,
    db,
    dev: secrets.dev,
    adminToken: secrets.adminToken,
    async listen(port, host) {
      server = createServer(getRequestListener(app.fetch));
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(port, host, () => resolve());
      });
      outbox.start();
      workers = startWorkers({ db, outbox, resources: services.resources, log, sweepMs: config.sweepIntervalMs });
      return (server.address() as AddressInfo).port;
    },
    async stop() {
      if (server) {
        const s = server;
        // close() stops accepting and resolves once in-flight requests finish; idle keep-alive sockets go now.
        const closed = new Promise<void>((resolve) => s.close(() => resolve()));
        s.closeIdleConnections();
        const force = setTimeout(() => s.closeAllConnections(), 10_000);
        await closed;
        clearTimeout(force);
      }
      await workers?.stop();
      await outbox.stop();
      await db.close();
    },
  };
}
