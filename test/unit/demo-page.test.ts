/** The routes that serve the built browser demo: its page with a CSP, its assets, nothing else from the disk. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Hono } from 'hono';
import { afterAll, describe, expect, it } from 'vitest';
import { demoPage } from '../../server/http/demo-page';

const dir = mkdtempSync(path.join(os.tmpdir(), 'slotwise-demo-page-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the demo page', () => {
  it('serves index.html with a same-origin CSP, and the hashed assets with their types', async () => {
    mkdirSync(path.join(dir, 'assets'), { recursive: true });
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>Slotwise</title>');
    writeFileSync(path.join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
    writeFileSync(path.join(dir, '.built'), 'x');
    writeFileSync(path.join(dir, 'secret.txt'), 'nope');
    const app = new Hono();
    demoPage(app, dir);

    const page = await app.request('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('<title>Slotwise</title>');

    const js = await app.request('/assets/index-abc.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('text/javascript');
    expect(js.headers.get('cache-control')).toContain('immutable');

    // (`/assets/%2e%2e` is `/` by the URL rules, the page itself.)
    for (const p of ['/assets/..%2Fsecret.txt', '/assets/..%2F..%2Fpackage.json', '/assets/.built', '/assets/missing.js', '/assets/index-abc.exe', '/assets/%00.js', '/assets/a%2Fb.js']) {
      expect((await app.request(p)).status, p).toBe(404);
    }
  });

  it('says how to build the demo when it is not built', async () => {
    const app = new Hono();
    demoPage(app, path.join(dir, 'nothing-here'));
    const page = await app.request('/');
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('npm run demo:build');
  });
});
