/** Composition root of one Slotwise node: database, services, HTTP app, workers. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { withFixedHeaders } from './http/fixed-headers';
import pino from 'pino';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Config } from './config';
import type { CoreDeps, Logger } from './core/ports';
import { availabilityService } from './core/services/availability';
import { AvailabilityCache, invalidationsOf, type Invalidation } from './core/services/availability-cache';
import { SlotMemory } from './core/services/slot-memory';
import { ResourceCache } from './core/services/resource-cache';
import { bookingService } from './core/services/bookings';
import { eventService } from './core/services/events';
import { holdService } from './core/services/holds';
import { resourceService } from './core/services/resources';
import { credentialService } from './core/services/credentials';
import { demoService } from './core/services/demo';
import { protectionService, rateBuckets } from './core/services/protection';
import { resolveSecrets, tenantService } from './core/services/tenants';
import type { Clock } from './core/types';
import { feedSlotName, migrate } from './db/migrate';
import { FeedDecoder } from './db/feed';
import { Db } from './db/pool';
import { PgStore, pgDocumentStore } from './db/store';
import { holdCommands } from './core/commands';
import { commandPipeline } from './core/pipeline';
import type { Services } from './core/services';
import { createBus, type Bus } from './bus/bus';
import { RateCounters } from './bus/rate-limits';
import { guardConnections, serverOptions } from './http/connections';
import { createHttpApp } from './http/app';
import { attachRealtime } from './realtime/attach';
import { groupDocs } from './realtime/group-docs';
import type { YjsLimits } from './realtime/yjs/limits';
import { DocRegistry } from './realtime/yjs/registry';
import { groupService } from './core/services/groups';
import { startWorkers, type Workers } from './workers';
import { TestPaymentProvider } from './db/payments';
import { captureRetryOf, paymentFlow } from './core/services/payments';
import { PgJobQueue } from './db/jobs';
import { webhookTransport } from './http/outbound';
import { DELIVER_JOB, webhookService } from './core/services/webhooks';
import { calendarFeedService } from './core/services/calendar-feeds';
import { mailService } from './core/services/mail';
import { mailTransport } from './http/smtp';

export const VERSION = '0.1.0';
const AVAILABILITY_CHANNEL = 'availability:invalidate';

export interface NodeOptions {
  config: Config & { databaseUrl: string };
  log?: Logger;
  clock?: Clock;
  /** Test hook: the node never decodes nor publishes the feed (other nodes must). */
  breakPublish?: boolean;
  /** Test hook: the feed publisher's in-memory backlog bound (default DEFAULT_FEED_MAX_UNSENT, 20,000 events). */
  feedMaxUnsent?: number;
  /** Test hook: resource heads the feed decoder keeps in memory (default DEFAULT_FEED_MAX_HEADS, 100,000). */
  feedMaxHeads?: number;
  /** Test hook: transactions the feed decoder numbers ahead of their store (default DEFAULT_FEED_MAX_AHEAD, 5,000). */
  feedMaxAhead?: number;
  /** Test hook: false runs every hold and direct booking through the general path, to compare the two. */
  fastPaths?: boolean;
  /** Overrides of the Yjs limits' defaults (server/realtime/yjs/limits.ts). */
  yjsLimits?: Partial<YjsLimits>;
}

export interface SlotwiseNode {
  /** The Hono app (for in-process requests; the security, request-id and CORS headers of http/fixed-headers.ts are added by the HTTP server, not by it). */
  app: ReturnType<typeof createHttpApp>;
  db: Db;
  /** Development credentials, when the node made or found them. */
  dev?: { adminToken: string; tenantId: string; apiKey: string };
  adminToken: string;
  bus: Bus;
  server: Server;
  /** Starts HTTP on `port` (0 = any) and the workers; resolves with the bound port. */
  listen(port: number, host?: string): Promise<number>;
  /**
   * Drains in-flight requests, stops workers, closes the pool. With `drainMs`,
   * /readyz answers 503 and the listener keeps accepting (and answering) for
   * that long first, so requests already sent but still in the kernel's
   * backlog are answered rather than reset.
   */
  stop(opts?: { drainMs?: number }): Promise<void>;
}

/** Builds one node: migrates, resolves secrets, wires services and the app. */
export async function createNode(opts: NodeOptions): Promise<SlotwiseNode> {
  const { config } = opts;
  const log = opts.log ?? pino({ level: config.logLevel, base: { node: config.nodeId } });
  const clock = opts.clock ?? { now: () => Date.now() };
  const { limits } = config;
  const db = new Db(config.databaseUrl, {
    readUrl: config.databaseReadUrl,
    max: config.dbPoolSize,
    statementTimeoutMs: limits.db.statementTimeoutMs,
    idleInTransactionTimeoutMs: limits.db.idleInTransactionTimeoutMs,
    queueMax: limits.db.queueMax,
    onError: (err) => log.warn({ err: err.message }, 'idle database connection lost'),
  });
  await migrate(db.pool);
  const slot = await feedSlotName(db.pool);
  const bus = createBus(config.nodeId, config.redisUrl, log);
  const store = new PgStore(db);
  const resourceCache = new ResourceCache();
  const deps: CoreDeps = {
    store,
    cluster: bus,
    clock,
    config: {
      holdTtlSeconds: config.holdTtlSeconds, holdMinTtlSeconds: config.holdMinTtlSeconds, slotHorizonDays: config.slotHorizonDays,
      fastPaths: opts.fastPaths, holdQuota: limits.holds, paymentCaptureRetryMs: config.payments?.captureRetryMs,
    },
    log,
    resourceCache,
    // Payments: PAYMENT_PROVIDER=none leaves it out (no payment step).
    payments: config.payments?.provider === 'test' ? new TestPaymentProvider(db.pool) : undefined,
  };
  const secrets = await resolveSecrets(deps, { adminToken: config.adminToken, jwtSecret: config.jwtSecret });
  const credentials = credentialService(deps, secrets);
  await credentials.start();
  const counters = new RateCounters(config.redisUrl, rateBuckets(limits), log, `sw:rl:${secrets.clusterId}`);
  const protection = protectionService(limits, counters, () => db.saturated());
  // REST availability answers are cached per node. A commit invalidates what its events name on this node
  // before it answers, and on the other nodes through the bus; each batch of the feed does so again on every
  // node as it arrives (realtime's onFeed), which covers a node that died before sending.
  const availabilityCache = new AvailabilityCache(clock, { maxBytes: limits.answers.availabilityCacheBytes });
  // The slots of hot resources, for answers the cache does not hold; checked against the same change marks.
  const slotMemory = new SlotMemory(clock, availabilityCache.marks);
  // What a node does itself with invalidations: its availability answers, and the resources it remembers for
  // the fast paths (a tenant's, when a resource, schedule or block of it changed; resource-cache.ts).
  const invalidateHere = (invalidations: Invalidation[]) => {
    availabilityCache.invalidate(invalidations);
    for (const [tenantId, resourceIds] of invalidations) if (resourceIds === null) resourceCache.forgetTenant(tenantId);
  };
  const sendInvalidations = (invalidations: Invalidation[]) => {
    bus.publish(AVAILABILITY_CHANNEL, 'invalidate', invalidations).catch((err) => log.warn({ err: (err as Error).message }, 'availability invalidation not sent'));
  };
  // Commits: this node's cache at once; the other nodes get the commits of one event-loop turn in one message
  // (under load, one Redis publish per commit was a twentieth of a hold's CPU on the committing node).
  let outgoing: Invalidation[] | null = null;
  db.onCommit((changes) => {
    const invalidations = invalidationsOf(changes);
    if (invalidations.length === 0) return;
    invalidateHere(invalidations);
    if (outgoing) {
      outgoing.push(...invalidations);
      return;
    }
    outgoing = invalidations;
    setImmediate(() => {
      const batch = outgoing!;
      outgoing = null;
      sendInvalidations(batch);
    });
  });
  const unsubscribeInvalidations = await bus.subscribe(AVAILABILITY_CHANNEL, (env) => {
    if (Array.isArray(env.payload)) invalidateHere(env.payload as Invalidation[]);
  });
  // Integrations: the job queue on the database, webhooks delivered by its jobs (docs/integrations.md).
  const integrations = config.integrations;
  const jobs = new PgJobQueue({ pool: db.integrationPool, log, expireSeconds: integrations.jobs.expireSeconds, maintenanceSeconds: integrations.jobs.maintenanceSeconds, pollingSeconds: 2 });
  const transport = webhookTransport({ allowPrivate: integrations.webhooks.allowPrivate, timeoutMs: integrations.webhooks.timeoutMs, userAgent: `Slotwise-Webhooks/${VERSION}` });
  const webhookSettings = {
    maxEndpoints: integrations.webhooks.maxEndpoints, retryBaseMs: integrations.webhooks.retryBaseMs, retryMaxMs: integrations.webhooks.retryMaxMs,
    disableAfterMs: integrations.webhooks.disableAfterMs, concurrency: integrations.webhooks.concurrency,
    attemptTimeoutMs: integrations.webhooks.timeoutMs,
  };
  const webhooks = webhookService({ ...deps, jobs, transport }, webhookSettings);
  // Dispatch and delivery run on the integrations' own connections.
  const webhookWork = webhookService({ ...deps, store: new PgStore(db, 'integrations'), jobs, transport }, webhookSettings);
  // E-mail: made from the same feed, on the same connections.
  const mail = integrations.mail;
  const mailWork = mailService({ ...deps, store: new PgStore(db, 'integrations'), transport: mailTransport({ smtpUrl: mail.smtpUrl, timeoutMs: mail.timeoutMs, log }) }, {
    from: mail.from, reminderBeforeMs: mail.reminderBeforeMs, retryBaseMs: mail.retryBaseMs, giveUpAfterMs: mail.giveUpAfterMs, concurrency: mail.concurrency,
    leaseMs: mail.leaseMs,
  });
  const docs = new DocRegistry({ store: pgDocumentStore(db), bus, log, limits: { ...yjsLimitsOf(limits), ...opts.yjsLimits } });
  const holds = holdService(deps);
  const resources = resourceService(deps);
  const services: Services = {
    pipeline: commandPipeline({ store, log }),
    commands: holdCommands(holds),
    tenants: tenantService(deps),
    credentials,
    protection,
    resources,
    availability: availabilityService(deps, availabilityCache, { maxSlots: limits.answers.availabilityMaxSlots }, slotMemory),
    holds,
    bookings: bookingService(deps),
    events: eventService(deps, { feedMaxBytes: limits.answers.feedMaxBytes }),
    groups: groupService(deps, groupDocs(docs), holds),
    demo: demoService({ deps, resources, credentials, dev: secrets.dev }),
    webhooks,
    calendarFeeds: calendarFeedService(deps, { maxEvents: limits.calendar.maxEvents, feedsPerTenant: limits.calendar.feedsPerTenant }),
  };
  // Development mode: the dev tenant gets demo resources on its first start, so the browser demo is not empty.
  await services.demo.seedIfEmpty();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Assigned once the decoder exists (below); read at scrape time.
  let feedState = () => ({ leading: false, lastSeq: 0, emitted: 0 });
  new Gauge({
    name: 'slotwise_feed_decoder', help: '1 while this node decodes the event feed (one node of the cluster at a time), else 0', registers: [registry],
    collect() { this.set(feedState().leading ? 1 : 0); },
  });
  const feedDelay = new Histogram({
    name: 'slotwise_feed_delay_seconds',
    help: 'Per event, on the decoding node: seconds from its transaction\'s commit timestamp (Postgres\'s clock, taken before the commit\'s WAL flush) until the decoder received it (decoded), stored it numbered (stored) and handed it to every node through the bus (emitted)',
    labelNames: ['stage'], registers: [registry],
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
  });
  new Gauge({
    name: 'slotwise_feed_unpublished_events', help: 'Events the decoder stored but has not emitted yet (0 on standby nodes)', registers: [registry],
    collect() { const f = feedState(); this.set(f.leading ? Math.max(0, f.lastSeq - f.emitted) : 0); },
  });
  new Gauge({
    name: 'slotwise_write_batch', help: 'Group commit of fast-path holds and direct bookings since start: statements sent (batches), writes in them (items), run alone after a refused batch (alone), the largest batch, milliseconds writes waited for their batch (wait_ms, summed) and batches took (run_ms, summed, with the connection)', labelNames: ['what'], registers: [registry],
    collect() {
      const { batches, items, alone, largest, waitMs, runMs } = db.batcher.stats;
      this.set({ what: 'batches' }, batches);
      this.set({ what: 'items' }, items);
      this.set({ what: 'alone' }, alone);
      this.set({ what: 'largest' }, largest);
      this.set({ what: 'wait_ms' }, waitMs);
      this.set({ what: 'run_ms' }, runMs);
    },
  });
  new Gauge({
    name: 'slotwise_slot_memory_rows', help: 'Slot rows this node holds in memory for availability answers (bounded; slot-memory.ts)', registers: [registry],
    collect() { this.set(slotMemory.stats().rows); },
  });
  new Gauge({
    name: 'slotwise_slot_memory_reads', help: 'Resources of availability answers served from slot memory (hit) or read from Postgres (miss), since start', labelNames: ['result'], registers: [registry],
    collect() {
      const { hits, misses } = slotMemory.stats();
      this.set({ result: 'hit' }, hits);
      this.set({ result: 'miss' }, misses);
    },
  });
  // Read at scrape time, from the database: every node reports the cluster's figures (a failed read leaves the last ones).
  new Gauge({
    name: 'slotwise_jobs', help: 'Jobs of the job queue by queue and state (created, retry, active, completed, failed, cancelled), cluster-wide', labelNames: ['queue', 'state'], registers: [registry],
    async collect() {
      const stats = await jobs.stats().catch(() => null);
      if (!stats) return;
      this.reset();
      for (const x of stats.byState) this.set({ queue: x.queue, state: x.state }, x.count);
    },
  });
  new Gauge({
    name: 'slotwise_webhooks', help: 'Webhook deliveries pending, and endpoints failing (their last attempt failed) or disabled, cluster-wide', labelNames: ['what'], registers: [registry],
    async collect() {
      const w = await webhookWork.stats().catch(() => null);
      if (!w) return;
      this.set({ what: 'pending' }, w.pending);
      this.set({ what: 'endpoints_failing' }, w.endpointsFailing);
      this.set({ what: 'endpoints_disabled' }, w.endpointsDisabled);
    },
  });
  new Gauge({
    name: 'slotwise_emails', help: 'E-mail messages, cluster-wide: all pending, and those sent, logged (no SMTP_URL: reminders only), skipped and failed in the last 24 hours', labelNames: ['status'], registers: [registry],
    async collect() {
      const m = await mailWork.stats().catch(() => null);
      if (!m) return;
      for (const status of ['pending', 'sent', 'logged', 'skipped', 'failed']) this.set({ status }, m[status] ?? 0);
    },
  });
  let draining = false;
  const readiness = {
    async check() {
      const checks: Record<string, string> = { postgres: await db.pool.query('SELECT 1').then(() => 'ok', (e: Error) => e.message) };
      if (config.redisUrl) checks.redis = bus.healthy() ? 'ok' : 'not connected';
      // A load balancer takes the node out of rotation while it still answers what it gets.
      if (draining) checks.shutdown = 'draining';
      return checks;
    },
  };
  const app = createHttpApp({ services, registry, readiness, log, version: VERSION, limits });

  const listener = await withFixedHeaders(getRequestListener(app.fetch));
  const server: Server = createServer(serverOptions(limits), (req, res) => {
    // While draining, each answer ends its connection: a keep-alive client reconnects elsewhere.
    if (draining) res.setHeader('Connection', 'close');
    listener(req, res);
  });
  guardConnections(server, limits, log);
  // Every socket the server accepted, upgraded ones (Socket.IO, Yjs) too: closeAllConnections() leaves those, and
  // one still open would keep close() from finishing.
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const realtime = attachRealtime({
    server, bus, services, docs, log, limits,
    // The batch itself reaches every node, so each invalidates from it: no message of its own.
    onFeed: (events) => {
      const invalidations = invalidationsOf(events);
      if (invalidations.length) invalidateHere(invalidations);
    },
  });
  // The feed: whichever node holds the slot decodes, stores and publishes; the others stand by.
  const feed = new FeedDecoder({
    url: config.databaseUrl,
    slot,
    pool: db.relayPool,
    log,
    // Without Redis an emit would reach this node's sockets only: the publisher waits for the bus instead.
    canPublish: () => bus.healthy(),
    maxUnsent: opts.feedMaxUnsent,
    maxHeads: opts.feedMaxHeads,
    maxAhead: opts.feedMaxAhead,
    observe: (stage, seconds) => feedDelay.observe({ stage }, seconds),
    publish: (events) => realtime.publish(events),
  });
  feedState = () => feed.state();
  let workers: Workers | null = null;
  let listening = false;
  return {
    app,
    db,
    dev: secrets.dev,
    adminToken: secrets.adminToken,
    bus,
    server,
    async listen(port, host) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      listening = true;
      if (!opts.breakPublish) feed.start();
      // Background work runs on the background pool, which requests cannot exhaust.
      const background = new PgStore(db, 'background');
      workers = startWorkers({
        db, background, resources: resourceService({ ...deps, store: background }), log, sweepMs: config.sweepIntervalMs,
        integrations: {
          jobs, webhooks: webhookWork, pollMs: integrations.pollMs, deliverJob: DELIVER_JOB, concurrency: integrations.webhooks.concurrency,
          mail: mailWork,
        },
        payments: {
          flow: paymentFlow(deps.payments, log, captureRetryOf(deps.config, deps.clock)),
          retryMs: config.payments?.captureRetryMs ?? 5_000,
        },
      });
      return (server.address() as AddressInfo).port;
    },
    async stop(opts = {}) {
      // Each step is logged, so a slow shutdown says where it waited.
      const step = async (name: string, fn: () => Promise<unknown>) => {
        const t0 = Date.now();
        await fn();
        log.info({ step: name, ms: Date.now() - t0 }, 'shutdown step done');
      };
      if (listening) await step('http', async () => {
        const s = server;
        draining = true;
        // Live connections (Socket.IO, Yjs) go now. Connections a client opened before the signal may
        // still wait in the listen backlog, where close() would reset them: keep accepting for a while.
        await Promise.all([realtime.disconnectAll(), new Promise((r) => setTimeout(r, opts.drainMs ?? 0))]);
        // close() stops accepting and resolves once in-flight requests finish; idle keep-alive
        // sockets go now, and live clients that reconnected during the drain window go again.
        const closed = new Promise<void>((resolve) => s.close(() => resolve()));
        s.closeIdleConnections();
        const force = setTimeout(() => {
          log.warn({ open: sockets.size }, 'shutdown: connections still open after 10 s; closing them');
          s.closeAllConnections();
          for (const socket of sockets) socket.destroy();
        }, 10_000);
        await realtime.disconnectAll();
        // A client whose reconnect was accepted before close() may finish its WebSocket upgrade after that sweep:
        // sweep again until the server has closed, so no live connection keeps it open.
        const again = setInterval(() => void realtime.disconnectAll().catch(() => {}), 250);
        await closed;
        clearInterval(again);
        clearTimeout(force);
      });
      // An e-mail still talking to a slow SMTP server is left after 10 s: its lease runs out and another node sends it.
      await step('workers', () => Promise.race([workers?.stop(), new Promise((r) => setTimeout(r, 10_000).unref())]));
      // A job still running after 5 s is left to expire and run again elsewhere (jobs are safe to repeat).
      await step('job queue', () => Promise.race([jobs.stop(5_000), new Promise((r) => setTimeout(r, 6_000).unref())]));
      await step('feed', () => feed.stop());
      // Documents are saved before the pool closes.
      await step('realtime', () => realtime.close());
      await unsubscribeInvalidations().catch(() => {});
      await credentials.stop();
      await counters.close();
      await bus.close();
      await step('database', () => db.close());
    },
  };
}

/** The Yjs limits the environment sets: the rate's burst is twice a second's worth, the bytes' a quarter of a minute's. */
function yjsLimitsOf(limits: Config['limits']): Partial<YjsLimits> {
  const { maxDocBytes, messagesPerSecond, updateBytesPerMinute } = limits.yjs;
  return { maxDocBytes, messagesPerSecond, messageBurst: 2 * messagesPerSecond, updateBytesPerMinute, updateByteBurst: Math.max(64 * 1024, Math.floor(updateBytesPerMinute / 4)) };
}
