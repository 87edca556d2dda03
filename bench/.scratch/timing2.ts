import pg from 'pg';
const original = pg.Client.prototype.query as any;
const agg = new Map<string, [number, number]>();
pg.Client.prototype.query = function (this: any, ...args: any[]) {
  const text = String(typeof args[0] === 'string' ? args[0] : args[0]?.text).replace(/\s+/g, ' ').slice(0, 50);
  const t0 = performance.now();
  const r = original.apply(this, args);
  if (r && r.then) r.then(() => { const a = agg.get(text) ?? [0, 0]; a[0]++; a[1] += performance.now() - t0; agg.set(text, a); }, () => {});
  return r;
} as any;
const origConnect = pg.Pool.prototype.connect as any;
let waits = [0, 0];
pg.Pool.prototype.connect = function (this: any, ...args: any[]) {
  const t0 = performance.now();
  const r = origConnect.apply(this, args);
  if (r && r.then) r.then(() => { waits[0]++; waits[1] += performance.now() - t0; });
  return r;
} as any;
process.on('SIGUSR2', () => {
  for (const [t, [n, ms]] of [...agg].sort((a, b) => b[1][1] - a[1][1]).slice(0, 14)) process.stderr.write(`AGG ${n} avg ${(ms / n).toFixed(2)} ms  ${t}\n`);
  process.stderr.write(`AGG pool.connect ${waits[0]} avg ${(waits[1] / waits[0]).toFixed(2)} ms\n`);
});
