/** Environment → typed configuration, validated once at start-up. */
import os from 'node:os';
import { z } from 'zod';

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);

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
  DB_POOL_SIZE: int(20, 1, 500),
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
  };
}
