/**
 * Outbound HTTP for webhooks. A tenant chooses the URL, so a request must not
 * become a way into the network the nodes sit in: every address a URL
 * resolves to is checked against private, loopback, link-local and other
 * non-public ranges, at creation and again when connecting (the address
 * checked is the address connected to, so a name that changes its answer in
 * between gains nothing). `allowPrivate` (WEBHOOK_ALLOW_PRIVATE=1) lifts the
 * check, for receivers inside one's own network and for tests.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net, { BlockList } from 'node:net';
import type { LookupFunction } from 'node:net';
import type { OutboundResult, WebhookTransport } from '../core/ports';

/** Addresses no webhook may reach unless private addresses are allowed. */
function nonPublic(): BlockList {
  const list = new BlockList();
  for (const [net4, bits] of [
    ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24],
    ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
  ] as const) list.addSubnet(net4, bits, 'ipv4');
  for (const [net6, bits] of [['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
    list.addSubnet(net6, bits, 'ipv6');
  }
  return list;
}
const BLOCKED = nonPublic();

/** True when the address is not a public one (IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry). */
export function isNonPublicAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return BLOCKED.check(mapped[1]!, 'ipv4');
  const family = net.isIP(address);
  if (family === 0) return true;
  return BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export interface OutboundOptions {
  /** Deliver to private and loopback addresses too. */
  allowPrivate: boolean;
  /** Per request: connect, send, and the answer's headers and body. */
  timeoutMs: number;
  userAgent: string;
}

const MAX_URL = 2048;
/** Of an answer's body, this much is read (and dropped); the rest is not waited for. */
const MAX_ANSWER_BYTES = 64 * 1024;

export function webhookTransport(opts: OutboundOptions): WebhookTransport {
  const refused = (address: string) => !opts.allowPrivate && isNonPublicAddress(address);

  // Every address the connection may use is checked: the one it connects to is among them.
  const lookup: LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as dns.LookupAddress[];
      const bad = list.find((a) => refused(a.address));
      if (bad) return callback(Object.assign(new Error(`${hostname} resolves to ${bad.address}, a private or reserved address`), { code: 'EADDRREFUSED' }), '', 0);
      if ((options as dns.LookupOptions).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      const first = list[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
      callback(null, first.address, first.family);
    });
  };

  async function check(raw: string): Promise<string | null> {
    if (raw.length > MAX_URL) return `the URL is longer than ${MAX_URL} characters`;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return 'not a URL';
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'only http and https URLs are delivered to';
    if (url.username || url.password) return 'the URL must not carry a user name or password';
    if (opts.allowPrivate) return null;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (net.isIP(host)) return refused(host) ? `${host} is a private or reserved address` : null;
    try {
      const addresses = await dns.promises.lookup(host, { all: true });
      const bad = addresses.find((a) => refused(a.address));
      return bad ? `${host} resolves to ${bad.address}, a private or reserved address` : null;
    } catch {
      return `${host} does not resolve`;
    }
  }

  function post(raw: string, body: string, headers: Record<string, string>): Promise<OutboundResult> {
    const started = performance.now();
    const done = (status: number | null, error: string | null): OutboundResult => ({ status, error, durationMs: performance.now() - started });
    return new Promise((resolve) => {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        return resolve(done(null, 'not a URL'));
      }
      const host = url.hostname.replace(/^\[|\]$/g, '');
      // An address written in the URL is connected to without a lookup: checked here.
      if (net.isIP(host) && refused(host)) return resolve(done(null, `${host} is a private or reserved address`));
      const client = url.protocol === 'https:' ? https : http;
      let settled = false;
      const finish = (r: OutboundResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const req = client.request(url, {
        method: 'POST',
        lookup,
        agent: false,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': opts.userAgent },
      }, (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_ANSWER_BYTES) {
            res.destroy();
            finish(done(status, null));
          }
        });
        res.on('end', () => finish(done(status, null)));
        res.on('error', () => finish(done(status, null)));
      });
      const timer = setTimeout(() => {
        req.destroy();
        finish(done(null, `no answer within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => finish(done(null, err.code === 'EADDRREFUSED' ? err.message : `${err.code ?? 'error'}: ${err.message}`)));
      req.end(body);
    });
  }

  return { check, post };
}
