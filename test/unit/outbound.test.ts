/**
 * Outbound webhook requests (server/http/outbound.ts): private, loopback,
 * link-local and reserved addresses are refused, when the URL is checked and
 * again when connecting (a name that resolves to loopback), unless allowed;
 * only http(s) URLs without credentials; timeouts and refused connections are
 * reported, never thrown.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNonPublicAddress, webhookTransport } from '../../server/http/outbound';

let server: http.Server;
let port = 0;
const seen: string[] = [];
let endlessBytes = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    if (req.url === '/slow') return; // never answers
    if (req.url === '/endless') {
      // 200, then a body that never ends: the sender stops reading past its bound, without waiting for a timeout.
      res.writeHead(200);
      const more = () => {
        if (res.destroyed || res.writableEnded) return;
        endlessBytes += 16_384;
        res.write(Buffer.alloc(16_384, 120), () => setImmediate(more));
      };
      more();
      return;
    }
    res.writeHead(req.url === '/fail' ? 500 : 200).end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('outbound webhook requests', () => {
  it('classifies addresses', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '224.0.0.1', 'not-an-ip']) {
      expect(isNonPublicAddress(a), a).toBe(true);
    }
    for (const a of ['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) expect(isNonPublicAddress(a), a).toBe(false);
  });

  it('refuses private addresses when checking a URL, and other schemes and credentials', async () => {
    const strict = webhookTransport({ allowPrivate: false, timeoutMs: 1_000, userAgent: 'test' });
    for (const url of [`http://127.0.0.1:${port}/`, 'http://localhost/', 'http://[::1]/', 'http://169.254.169.254/latest/meta-data', 'http://10.0.0.1/', 'http://[::ffff:127.0.0.1]/']) {
      expect(await strict.check(url), url).toMatch(/private or reserved/);
    }
    expect(await strict.check('ftp://93.184.215.14/')).toMatch(/only http and https/);
    expect(await strict.check('https://u:p@93.184.215.14/')).toMatch(/user name or password/);
    expect(await strict.check('nonsense')).toBe('not a URL');
    expect(await strict.check(`https://93.184.215.14/${'x'.repeat(2100)}`)).toMatch(/longer than/);
    expect(await strict.check('https://93.184.215.14/hook')).toBeNull();
    const open = webhookTransport({ allowPrivate: true, timeoutMs: 1_000, userAgent: 'test' });
    expect(await open.check(`http://127.0.0.1:${port}/`)).toBeNull();
  });

  it('refuses to connect to a private address, by IP or by a name that resolves to one', async () => {
    const strict = webhookTransport({ allowPrivate: false, timeoutMs: 1_000, userAgent: 'test' });
    const before = seen.length;
    const byIp = await strict.post(`http://127.0.0.1:${port}/ip`, '{}', {});
    expect([byIp.status, byIp.error]).toEqual([null, '127.0.0.1 is a private or reserved address']);
    const byName = await strict.post(`http://localhost:${port}/name`, '{}', {});
    expect(byName.status).toBeNull();
    expect(byName.error).toMatch(/private or reserved/);
    expect(seen.length).toBe(before);
  });

  it('reports answers, timeouts and refused connections without throwing', async () => {
    const open = webhookTransport({ allowPrivate: true, timeoutMs: 300, userAgent: 'test' });
    expect((await open.post(`http://127.0.0.1:${port}/ok`, '{"a":1}', { 'webhook-id': 'x' })).status).toBe(200);
    expect((await open.post(`http://127.0.0.1:${port}/fail`, '{}', {})).status).toBe(500);
    const slow = await open.post(`http://127.0.0.1:${port}/slow`, '{}', {});
    expect([slow.status, slow.error]).toEqual([null, 'no answer within 300 ms']);
    // A port nobody listens on: refused.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const refused = await open.post(`http://127.0.0.1:${freePort}/`, '{}', {});
    expect(refused.status).toBeNull();
    expect(refused.error).toMatch(/ECONNREFUSED/);
  });

  it('reads at most 64 KiB of an answer: an endless body is cut, not waited for until the timeout', async () => {
    const open = webhookTransport({ allowPrivate: true, timeoutMs: 20_000, userAgent: 'test' });
    const r = await open.post(`http://127.0.0.1:${port}/endless`, '{}', {});
    // Finished by the bound (a timeout would say "no answer within 20000 ms").
    expect([r.status, r.error]).toEqual([200, null]);
    expect(endlessBytes).toBeGreaterThan(64 * 1024);
  });
});
