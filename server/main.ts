/** `npm start`: one node on PORT, with embedded Postgres when DATABASE_URL is unset. */
import path from 'node:path';
import pino from 'pino';
import { ConfigError, loadConfig, type Config } from './config';
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedHandle } from './db/embedded';
import { createNode, type SlotwiseNode } from './node';

/** After a signal the listener keeps accepting this long, so requests sent before it (still in the backlog) are answered. */
const DRAIN_WINDOW_MS = 1000;
/** One Ctrl-C arrives twice under `npm start` (from the terminal, and forwarded by npm): a repeat this soon is the same one. */
const SAME_SIGNAL_MS = 1000;
/** After a second Ctrl-C, how long the rest of the shutdown may take before Postgres is stopped and the process exits anyway. */
const FORCED_EXIT_MS = 5000;

function banner(url: string, database: string, node: SlotwiseNode): string {
  const lines = [
    '',
    `  Slotwise is running on ${url}`,
    `  Browser demo:   ${url}/`,
    `  API docs:       ${url}/docs`,
    `  OpenAPI:        ${url}/openapi.json`,
    `  Database:       ${database}`,
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
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  let config: Config;
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
  let node: SlotwiseNode | null = null;
  let listening = false;

  // Installed before anything starts, so a signal during start-up stops the embedded Postgres too.
  let firstSignalAt = 0;
  let forced = false;
  const stopDatabaseAndExit = async (code: number) => {
    await embedded?.stop().catch((err) => log.error({ err }, 'the embedded Postgres did not stop'));
    process.exit(code);
  };
  const onSignal = async (signal: NodeJS.Signals) => {
    if (firstSignalAt) {
      if (forced || Date.now() - firstSignalAt < SAME_SIGNAL_MS) return;
      forced = true;
      log.warn({ signal }, 'second signal: closing every connection now');
      node?.server.closeAllConnections();
      setTimeout(() => void stopDatabaseAndExit(1), FORCED_EXIT_MS);
      return;
    }
    firstSignalAt = Date.now();
    if (!listening || !node) {
      // Nothing to drain. Exit at once rather than pull Postgres from under a migration: the exit
      // hooks ask the embedded Postgres for a fast shutdown and release DATA_DIR.
      log.warn({ signal }, 'interrupted during start-up');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down: draining requests');
    try {
      await node.stop({ drainMs: DRAIN_WINDOW_MS });
      // Postgres goes last, after every request and document save that needed it.
      await embedded?.stop();
      if (forced) log.warn('stopped, after cutting the connections still open');
      else log.info('stopped cleanly');
      process.exit(forced ? 1 : 0);
    } catch (err) {
      log.error({ err }, 'shutdown failed');
      await stopDatabaseAndExit(1);
    }
  };
  process.on('SIGINT', (s) => void onSignal(s));
  process.on('SIGTERM', (s) => void onSignal(s));

  try {
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      log.info({ dataDir: config.dataDir }, 'DATABASE_URL is not set: starting the embedded Postgres');
      embedded = await startEmbeddedPostgres(config.dataDir, (m) => log.warn({ postgres: m }, 'embedded postgres'), {
        home: config.embeddedPgHome,
        binaries: config.embeddedPgBinaries,
      });
      databaseUrl = embedded.url;
    }
    if (!config.redisUrl) log.info('REDIS_URL is not set: running as a single node');
    node = await createNode({ config: { ...config, databaseUrl }, log });
    const port = await node.listen(config.port);
    listening = true;
    const where = embedded && path.relative(process.cwd(), embedded.dataDir);
    const database = embedded ? `embedded Postgres (data in ${where && !where.startsWith('..') ? where : embedded.dataDir})` : 'DATABASE_URL';
    console.log(banner(`http://localhost:${port}`, database, node));
  } catch (err) {
    // A reason the user can act on is printed alone; anything else with its stack.
    if (err instanceof EmbeddedPostgresError) console.error(`Slotwise failed to start: ${err.message}`);
    else console.error('Slotwise failed to start:', err);
    await stopDatabaseAndExit(1);
  }
}

main().catch((err) => {
  console.error('Slotwise failed to start:', err);
  process.exit(1);
});
