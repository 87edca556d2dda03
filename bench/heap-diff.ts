/**
 * Compares two V8 heap snapshots (.heapsnapshot, e.g. from
 * BENCH_HEAP_SNAPSHOTS): retained objects grouped by constructor or kind,
 * with the growth in count and bytes from the first to the second, largest
 * first. `per` divides the growth (the connections added between them).
 *
 *   npx tsx bench/heap-diff.ts <before> <after> [per=250] [top=25]
 */
import { readFileSync } from 'node:fs';

interface Group {
  count: number;
  bytes: number;
}

function groups(file: string): Map<string, Group> {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const fields: string[] = snap.snapshot.meta.node_fields;
  const types: string[] = snap.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const nodes: number[] = snap.nodes;
  const strings: string[] = snap.strings;
  const out = new Map<string, Group>();
  for (let i = 0; i < nodes.length; i += fields.length) {
    const type = types[nodes[i + typeAt]!]!;
    // Objects by constructor; strings, code, arrays and the like by kind.
    const key = type === 'object' || type === 'closure' ? `${type} ${strings[nodes[i + nameAt]!]}` : `(${type})`;
    const g = out.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += nodes[i + sizeAt]!;
    out.set(key, g);
  }
  return out;
}

const [before, after, perArg, topArg] = process.argv.slice(2);
if (!before || !after) {
  console.error('usage: npx tsx bench/heap-diff.ts <before.heapsnapshot> <after.heapsnapshot> [per] [top]');
  process.exit(2);
}
const per = Number(perArg ?? 250);
const top = Number(topArg ?? 25);
const a = groups(before);
const b = groups(after);
const rows = [...new Set([...a.keys(), ...b.keys()])].map((key) => {
  const x = a.get(key) ?? { count: 0, bytes: 0 };
  const y = b.get(key) ?? { count: 0, bytes: 0 };
  return { key, count: y.count - x.count, bytes: y.bytes - x.bytes };
});
const total = rows.reduce((n, r) => n + r.bytes, 0);
console.log(`growth ${(total / 1024).toFixed(1)} KB in all, ${(total / per / 1024).toFixed(2)} KB per ${per > 1 ? 'unit' : 'snapshot'} (${per} added)\n`);
console.log('bytes/unit  count/unit  what');
for (const r of rows.sort((x, y) => y.bytes - x.bytes).slice(0, top)) {
  console.log(`${(r.bytes / per).toFixed(0).padStart(10)}  ${(r.count / per).toFixed(2).padStart(10)}  ${r.key}`);
}
