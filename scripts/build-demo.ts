/**
 * `npm start` runs this first (prestart): builds client-demo/ with Vite when
 * its build is missing or older than any of its sources, so a fresh clone
 * serves the demo after `npm install && npm start` and nothing built is
 * committed. `--force` always builds.
 */
import { closeSync, existsSync, openSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(root, 'client-demo/dist');
const STAMP = path.join(DIST, '.built');
// One build at a time (an `npm start` and the browser tests may both find the build stale): the others wait for it.
const LOCK = path.join(root, 'client-demo/.build-lock');
const LOCK_STALE_MS = 120_000;
// Everything the bundle is made of: the app, the typed client and the shared modules it imports, and the lock file.
const SOURCES = ['client-demo/src', 'client-demo/index.html', 'client-demo/vite.config.ts', 'shared', 'package-lock.json'];

function newestMtime(p: string): number {
  if (!existsSync(p)) return 0;
  const s = statSync(p);
  if (!s.isDirectory()) return s.mtimeMs;
  let newest = s.mtimeMs;
  for (const entry of readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, entry)));
  return newest;
}

/** True when client-demo/dist is missing or older than a source. */
export function demoBuildStale(): boolean {
  if (!existsSync(STAMP)) return true;
  const built = statSync(STAMP).mtimeMs;
  return SOURCES.some((s) => newestMtime(path.join(root, s)) > built);
}

/** Takes the build lock, waiting while another process builds (a lock older than two minutes was left by a dead one). */
async function lock(): Promise<() => void> {
  for (;;) {
    try {
      closeSync(openSync(LOCK, 'wx'));
      return () => rmSync(LOCK, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (existsSync(LOCK) ? statSync(LOCK).mtimeMs : Date.now());
      if (age > LOCK_STALE_MS) rmSync(LOCK, { force: true });
      else await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Builds the demo into client-demo/dist (unless `onlyIfStale` and another process just built it). */
export async function buildDemo(onlyIfStale = false): Promise<void> {
  const release = await lock();
  try {
    if (onlyIfStale && !demoBuildStale()) return;
    const { build } = await import('vite');
    await build({ configFile: path.join(root, 'client-demo/vite.config.ts') });
    writeFileSync(STAMP, new Date().toISOString() + '\n');
  } finally {
    release();
  }
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  if (process.argv.includes('--force') || demoBuildStale()) {
    const started = Date.now();
    process.stdout.write('Building the browser demo (client-demo/) …');
    try {
      await buildDemo(!process.argv.includes('--force'));
      console.log(` done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } catch (err) {
      console.log('');
      // The API works without the page: say why the page is missing and start anyway.
      console.error(`The browser demo could not be built, so / will not serve it: ${(err as Error).message}`);
    }
  }
}
