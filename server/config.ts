/** Environment → typed configuration, validated once at start-up. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import type { Limits } from './core/limits';

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);
/** A limit where 0 means "no limit" (documented per variable in docs/security.md). */
const cap = (def: number, max = 100_000_000) => int(def, 0, max);

const EnvSchema = z.object({
  PORT: int(3000, 0, 65535),
  DATABASE_URL: optionalString,
  DATABASE_READ_URL: optionalString,
  REDIS_URL: optionalString,
  ADMIN_TOKEN: optionalString.pipe(z.string().min(16, 'ADMIN_TOKEN must be at least 16 characters').optional()),
  JWT_SECRET: optionalString.pipe(z.string().min(32, 'JWT_SECRET must be at least 32 characters').optional()),
  HOLD_TTL_SECONDS: int(300, 1, 900),
  HOLD_MIN_TTL_SECONDS: int(30, 1, 900),
  SLOT_HORIZON_DAYS: int(90, 1, 730),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  NODE_ID: optionalString,
  DATA_DIR: z.string().default('.data'),
  EMBEDDED_PG_HOME: optionalString,
  EMBEDDED_PG_BINARIES: optionalString,
  SWEEP_INTERVAL_MS: int(200, 20, 10_000),
  DB_POOL_SIZE: int(20, 2, 500),

  // Protection: every default is in docs/security.md, with what hitting it answers.
  TRUST_PROXY: int(0, 0, 10),
  RATE_LIMIT_IP: cap(1_200),
  RATE_LIMIT_USER: cap(600),
  RATE_LIMIT_API_KEY: cap(6_000),
  RATE_LIMIT_AVAILABILITY_IP: cap(6_000),
  RATE_LIMIT_AVAILABILITY_USER: cap(2_400),
  RATE_LIMIT_AVAILABILITY_API_KEY: cap(30_000),
  AUTH_FAILURES_PER_IP: cap(30),
  INFLIGHT_PER_SOCKET: cap(4, 10_000),
  INFLIGHT_PER_USER: cap(8, 10_000),
  INFLIGHT_PER_TENANT: z.coerce.number().int().min(0).max(10_000).optional(),
  CONNECTIONS_PER_IP: cap(256, 1_000_000),
  MAX_CONNECTIONS: z.coerce.number().int().min(0).max(10_000_000).optional(),
  SOCKETS_PER_USER: cap(20, 1_000_000),
  USER_MAX_HOLDS: cap(5, 1_000_000),
  USER_REHOLD_LIMIT: cap(3, 1_000_000),
  USER_REHOLD_WINDOW_SECONDS: int(1_800, 1, 86_400),
  HTTP_HEADERS_TIMEOUT_MS: int(10_000, 1_000, 600_000),
  HTTP_REQUEST_TIMEOUT_MS: int(30_000, 1_000, 600_000),
  HTTP_KEEPALIVE_TIMEOUT_MS: int(5_000, 100, 600_000),
  HTTP_KEEPALIVE_MAX_REQUESTS: cap(1_000, 1_000_000),
  REQUEST_DEADLINE_MS: int(10_000, 100, 600_000),
  DB_STATEMENT_TIMEOUT_MS: int(5_000, 100, 3_600_000),
  DB_IDLE_TX_TIMEOUT_MS: int(10_000, 100, 3_600_000),
  DB_QUEUE_MAX: z.coerce.number().int().min(0).max(10_000_000).optional(),
  AVAILABILITY_MAX_SLOTS: int(20_000, 100, 10_000_000),
  AVAILABILITY_CACHE_MB: int(32, 1, 65_536),
  EVENTS_FEED_MAX_MB: int(4, 1, 1_024),
  CALENDAR_MAX_EVENTS: int(2_000, 1, 100_000),
  CALENDAR_MAX_FEEDS: int(500, 1, 1_000_000),
  YJS_MAX_DOC_KB: int(2_048, 64, 1_048_576),
  YJS_MESSAGES_PER_SECOND: int(50, 1, 100_000_000),
  YJS_UPDATE_KB_PER_MINUTE: int(1_024, 64, 100_000_000),

  // Integrations (docs/integrations.md).
  WEBHOOK_ALLOW_PRIVATE: z.enum(['0', '1', 'true', 'false']).default('0').transform((v) => v === '1' || v === 'true'),
  WEBHOOK_TIMEOUT_MS: int(10_000, 100, 120_000),
  WEBHOOK_MAX_ENDPOINTS: int(20, 1, 1_000),
  WEBHOOK_RETRY_BASE_MS: int(5_000, 10, 3_600_000),
  WEBHOOK_RETRY_MAX_MS: int(4 * 3_600_000, 10, 24 * 3_600_000),
  WEBHOOK_DISABLE_AFTER_MS: int(24 * 3_600_000, 100, 30 * 24 * 3_600_000),
  WEBHOOK_CONCURRENCY: int(4, 1, 256),
  INTEGRATION_POLL_MS: int(250, 20, 60_000),
  JOB_EXPIRE_SECONDS: int(60, 1, 3_600),
  JOB_MAINTENANCE_SECONDS: int(30, 1, 3_600),
  // E-mail: without SMTP_URL messages are logged, not sent.
  SMTP_URL: optionalString.pipe(z.string().regex(/^smtps?:\/\/[^\s]+$/, 'SMTP_URL must be an smtp:// or smtps:// URL').optional()),
  MAIL_FROM: z.string().min(3).max(320).default('Slotwise <no-reply@localhost>'),
  REMINDER_BEFORE_MINUTES: int(1_440, 0, 30 * 1_440),
  MAIL_TIMEOUT_MS: int(30_000, 100, 300_000),
  MAIL_LEASE_MS: int(30_000, 1_000, 600_000),
  MAIL_RETRY_BASE_MS: int(30_000, 10, 3_600_000),
  MAIL_GIVE_UP_AFTER_MS: int(24 * 3_600_000, 100, 30 * 24 * 3_600_000),
  MAIL_CONCURRENCY: int(4, 1, 64),

  // Payments (docs/integrations.md "Payments").
  PAYMENT_PROVIDER: z.enum(['none', 'test']).default('none'),
  PAYMENT_CAPTURE_RETRY_MS: int(5_000, 50, 3_600_000),
});

export interface Config {
  port: number;
  databaseUrl?: string;
  databaseReadUrl?: string;
  redisUrl?: string;
  adminToken?: string;
  jwtSecret?: string;
  holdTtlSeconds: number;
  holdMinTtlSeconds: number;
  slotHorizonDays: number;
  logLevel: string;
  nodeId: string;
  dataDir: string;
  /** As root: where the embedded Postgres' binaries and cluster go when the OS user postgres cannot reach them in place. */
  embeddedPgHome?: string;
  /** Test hook: a directory with bin/, lib/ and share/ to run instead of the packaged Postgres binaries. */
  embeddedPgBinaries?: string;
  sweepIntervalMs: number;
  dbPoolSize: number;
  limits: Limits;
  integrations: IntegrationConfig;
  /** Payments: the provider (none: no payment step) and how old an uncaptured payment must be before the sweep retries it. */
  payments: { provider: 'none' | 'test'; captureRetryMs: number };
}

export interface IntegrationConfig {
  webhooks: {
    allowPrivate: boolean;
    timeoutMs: number;
    maxEndpoints: number;
    retryBaseMs: number;
    retryMaxMs: number;
    disableAfterMs: number;
    concurrency: number;
  };
  /** How often each node looks for stored events to turn into deliveries, and for deliveries whose retry is due. */
  pollMs: number;
  jobs: { expireSeconds: number; maintenanceSeconds: number };
  mail: {
    /** SMTP server (smtp:// or smtps://, credentials in the URL); absent: messages are logged, not sent. */
    smtpUrl?: string;
    from: string;
    /** A reminder goes this long before a booking's start (0: no reminders). */
    reminderBeforeMs: number;
    /** The longest one SMTP conversation may be idle at any step. */
    timeoutMs: number;
    /** A sender's claim on a message; renewed every third of it while the sender talks to the server. */
    leaseMs: number;
    retryBaseMs: number;
    /** A message that still cannot be sent after this long is given up (status failed). */
    giveUpAfterMs: number;
    concurrency: number;
  };
}

/** Thrown with every problem in the environment listed, so start-up fails once and clearly. */
export class ConfigError extends Error {}

/** Reads and validates the environment; throws ConfigError listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.HOLD_MIN_TTL_SECONDS > e.HOLD_TTL_SECONDS) {
    throw new ConfigError('Invalid configuration:\n  HOLD_MIN_TTL_SECONDS must not exceed HOLD_TTL_SECONDS');
  }
  return {
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    databaseReadUrl: e.DATABASE_READ_URL,
    redisUrl: e.REDIS_URL,
    adminToken: e.ADMIN_TOKEN,
    jwtSecret: e.JWT_SECRET,
    holdTtlSeconds: e.HOLD_TTL_SECONDS,
    holdMinTtlSeconds: e.HOLD_MIN_TTL_SECONDS,
    slotHorizonDays: e.SLOT_HORIZON_DAYS,
    logLevel: e.LOG_LEVEL,
    nodeId: e.NODE_ID ?? `${os.hostname()}-${process.pid}`,
    dataDir: e.DATA_DIR,
    embeddedPgHome: e.EMBEDDED_PG_HOME,
    embeddedPgBinaries: e.EMBEDDED_PG_BINARIES,
    sweepIntervalMs: e.SWEEP_INTERVAL_MS,
    dbPoolSize: e.DB_POOL_SIZE,
    limits: {
      trustProxy: e.TRUST_PROXY,
      rates: {
        api: { ip: e.RATE_LIMIT_IP, user: e.RATE_LIMIT_USER, key: e.RATE_LIMIT_API_KEY },
        availability: { ip: e.RATE_LIMIT_AVAILABILITY_IP, user: e.RATE_LIMIT_AVAILABILITY_USER, key: e.RATE_LIMIT_AVAILABILITY_API_KEY },
        authFailuresPerIp: e.AUTH_FAILURES_PER_IP,
      },
      inflight: {
        socket: e.INFLIGHT_PER_SOCKET,
        user: e.INFLIGHT_PER_USER,
        // Half the pool: one tenant can never hold every connection other tenants need.
        tenant: e.INFLIGHT_PER_TENANT ?? Math.max(1, Math.floor(e.DB_POOL_SIZE / 2)),
      },
      connections: { perIp: e.CONNECTIONS_PER_IP, max: e.MAX_CONNECTIONS ?? defaultMaxConnections(), socketsPerUser: e.SOCKETS_PER_USER },
      holds: { perUser: e.USER_MAX_HOLDS, reholdLimit: e.USER_REHOLD_LIMIT, reholdWindowSeconds: e.USER_REHOLD_WINDOW_SECONDS },
      http: {
        headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
        requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
        keepAliveTimeoutMs: e.HTTP_KEEPALIVE_TIMEOUT_MS,
        keepAliveMaxRequests: e.HTTP_KEEPALIVE_MAX_REQUESTS,
        deadlineMs: e.REQUEST_DEADLINE_MS,
      },
      db: { statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS, idleInTransactionTimeoutMs: e.DB_IDLE_TX_TIMEOUT_MS, queueMax: e.DB_QUEUE_MAX ?? 2 * e.DB_POOL_SIZE },
      yjs: { maxDocBytes: e.YJS_MAX_DOC_KB * 1024, messagesPerSecond: e.YJS_MESSAGES_PER_SECOND, updateBytesPerMinute: e.YJS_UPDATE_KB_PER_MINUTE * 1024 },
      answers: { availabilityMaxSlots: e.AVAILABILITY_MAX_SLOTS, availabilityCacheBytes: e.AVAILABILITY_CACHE_MB * 1024 * 1024, feedMaxBytes: e.EVENTS_FEED_MAX_MB * 1024 * 1024 },
      calendar: { maxEvents: e.CALENDAR_MAX_EVENTS, feedsPerTenant: e.CALENDAR_MAX_FEEDS },
    },
    integrations: {
      webhooks: {
        allowPrivate: e.WEBHOOK_ALLOW_PRIVATE,
        timeoutMs: e.WEBHOOK_TIMEOUT_MS,
        maxEndpoints: e.WEBHOOK_MAX_ENDPOINTS,
        retryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
        retryMaxMs: Math.max(e.WEBHOOK_RETRY_BASE_MS, e.WEBHOOK_RETRY_MAX_MS),
        disableAfterMs: e.WEBHOOK_DISABLE_AFTER_MS,
        concurrency: e.WEBHOOK_CONCURRENCY,
      },
      pollMs: e.INTEGRATION_POLL_MS,
      jobs: { expireSeconds: e.JOB_EXPIRE_SECONDS, maintenanceSeconds: e.JOB_MAINTENANCE_SECONDS },
      mail: {
        smtpUrl: e.SMTP_URL,
        from: e.MAIL_FROM,
        reminderBeforeMs: e.REMINDER_BEFORE_MINUTES * 60_000,
        timeoutMs: e.MAIL_TIMEOUT_MS,
        leaseMs: e.MAIL_LEASE_MS,
        retryBaseMs: e.MAIL_RETRY_BASE_MS,
        giveUpAfterMs: e.MAIL_GIVE_UP_AFTER_MS,
        concurrency: e.MAIL_CONCURRENCY,
      },
    },
    payments: { provider: e.PAYMENT_PROVIDER, captureRetryMs: e.PAYMENT_CAPTURE_RETRY_MS },
  };
}

/**
 * The process's open-file limit minus room for everything that is not a
 * client connection (Postgres and Redis pools, log files, the listening
 * socket): past it the server refuses new connections instead of running
 * out of descriptors. Linux only; elsewhere 10,000.
 */
function defaultMaxConnections(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const soft = Number(/Max open files\s+(\d+)/.exec(limits)?.[1]);
    if (Number.isFinite(soft) && soft > 0) return Math.max(64, soft - Math.min(1_000, Math.floor(soft / 4)));
  } catch {
    // not Linux
  }
  return 10_000;
}
