import pg from 'pg';
const original = pg.Client.prototype.query as any;
let n = 0;
pg.Client.prototype.query = function (this: any, ...args: any[]) {
  const text = typeof args[0] === 'string' ? args[0] : args[0]?.text;
  const t0 = performance.now();
  const r = original.apply(this, args);
  if (r && r.then && n < 400) r.then(() => { n++; process.stderr.write(`Q ${(performance.now() - t0).toFixed(2)} ${String(text).replace(/\s+/g, ' ').slice(0, 60)}\n`); }, () => {});
  return r;
} as any;
