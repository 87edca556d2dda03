/**
 * A /healthz prober in a process of its own, so what it measures is the
 * nodes' answer time, not the test process's own event loop (busy opening a
 * thousand sockets). argv[2]: JSON `{name: url}`. Prints one JSON line per
 * probe: `{name, ms, ok, why?}`, every 100 ms per node, a fresh connection each.
 */
import http from 'node:http';

const targets = JSON.parse(process.argv[2] ?? '{}') as Record<string, string>;

function probe(url: string): Promise<{ ok: boolean; why?: string }> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/healthz`, { agent: false, timeout: 3_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? { ok: true } : { ok: false, why: `status ${res.statusCode}` }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ ok: false, why: err.message }));
  });
}

for (const [name, url] of Object.entries(targets)) {
  void (async () => {
    for (;;) {
      const t0 = performance.now();
      const r = await probe(url);
      const ms = Math.round(performance.now() - t0);
      process.stdout.write(`${JSON.stringify({ name, ms, ...r })}\n`);
      await new Promise((res) => setTimeout(res, Math.max(0, 100 - ms)));
    }
  })();
}
