/**
 * `npm start` runs this first (prestart): builds client-demo/ with Vite when
 * its build is missing or older than any of its sources, so a fresh clone
 * serves the demo after `npm install && npm start` and nothing built is
 * committed. `--force` always builds.
 */
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(root, 'client-demo/dist');
const STAMP = path.join(DIST, '.built');
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

/** Builds the demo into client-demo/dist. */
export async function buildDemo(): Promise<void> {
  const { build } = await import('vite');
  await build({ configFile: path.join(root, 'client-demo/vite.config.ts') });
  writeFileSync(STAMP, new Date().toISOString() + '\n');
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  if (process.argv.includes('--force') || demoBuildStale()) {
    const started = Date.now();
    process.stdout.write('Building the browser demo (client-demo/) …');
    try {
      await buildDemo();
      console.log(` done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } catch (err) {
      console.log('');
      // The API works without the page: say why the page is missing and start anyway.
      console.error(`The browser demo could not be built, so / will not serve it: ${(err as Error).message}`);
    }
  }
}
