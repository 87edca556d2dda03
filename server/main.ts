/** `npm start`: one node on PORT, with embedded Postgres when DATABASE_URL is unset. */
import pino from 'pino';
import { ConfigError, loadConfig } from './config';
import { startEmbeddedPostgres, type EmbeddedHandle } from './db/embedded';
import { createNode } from './node';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const log = pino({ level: config.logLevel, base: { node: config.nodeId } });
  let embedded: EmbeddedHandle | null = null;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    log.info({ dataDir: config.dataDir }, 'DATABASE_URL is not set: starting the embedded Postgres');
    embedded = await startEmbeddedPostgres(config.dataDir, (m) => log.warn({ postgres: m }, 'embedded postgres'));
    databaseUrl = embedded.url;
  }
  if (!config.redisUrl) log.info('REDIS_URL is not set: running as a single node');

  const node = await createNode({ config: { ...config, databaseUrl }, log });
  const port = await node.listen(config.port);
  const url = `http://localhost:${port}`;
  const lines = [
    '',
    `  Slotwise is running on ${url}`,
    `  API docs:       ${url}/docs`,
    `  OpenAPI:        ${url}/openapi.json`,
    `  Database:       ${embedded ? `embedded Postgres (data in ${config.dataDir}/pg)` : 'DATABASE_URL'}`,
  ];
  if (node.dev) {
    lines.push(
      '',
      '  Development credentials (set ADMIN_TOKEN to run without them):',
      `    ADMIN_TOKEN=${node.dev.adminToken}`,
      `    TENANT_ID=${node.dev.tenantId}`,
      `    API_KEY=${node.dev.apiKey}`,
    );
  }
  console.log(lines.join('\n') + '\n');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: draining requests');
    try {
      await node.stop();
      await embedded?.stop();
      log.info('stopped cleanly');
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err) => {
  console.error('Slotwise failed to start:', err);
  process.exit(1);
});
