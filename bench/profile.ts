/**
 * `npx tsx bench/profile.ts <file.cpuprofile> [top] [--window <name>]`: the
 * functions where a V8 CPU profile spent its samples (self time), and the call
 * sites that took the most in total (self + callees), by function and file.
 * Take one with BENCH_CPU_PROF=<dir> npm run bench (every Slotwise node then
 * runs with --cpu-prof and writes its profile into <dir> when it stops).
 * `--window <name>` keeps the samples between the marks `<name>:start` and
 * `<name>:end` of `<dir>/marks.jsonl` (bench/lib/marks.ts: each bench worker's
 * run, e.g. `p3-cached`, and each step of P5's ramp, e.g.
 * `slotwise-step-7-12000`); without a name it lists the marks.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
}

const args = process.argv.slice(2);
const w = args.indexOf('--window');
const windowName = w >= 0 ? (args[w + 1] ?? '') : null;
if (w >= 0) args.splice(w, 2);
const [file, topArg] = args;
if (!file) {
  console.error('usage: tsx bench/profile.ts <file.cpuprofile> [top] [--window <name>]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;

// Each sample's time, on the clock of the marks (V8 stamps samples in µs of CLOCK_MONOTONIC).
const at: number[] = [];
prof.timeDeltas.reduce((t, d, i) => (at[i] = t + d), prof.startTime);
let keep = (_i: number) => true;
if (windowName !== null) {
  const marksFile = path.join(path.dirname(file), 'marks.jsonl');
  if (!existsSync(marksFile)) throw new Error(`no ${marksFile}: take the profile with BENCH_CPU_PROF`);
  const marks = readFileSync(marksFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { name: string; us: number });
  const first = at[0] ?? 0;
  const last = at[at.length - 1] ?? 0;
  if (!windowName) {
    for (const m of marks) console.log(`${m.name.padEnd(40)} ${((m.us - first) / 1e6).toFixed(1).padStart(8)} s${m.us < first || m.us > last ? ' (outside this profile)' : ''}`);
    process.exit(0);
  }
  const from = marks.find((m) => m.name === `${windowName}:start`)?.us;
  const to = marks.find((m) => m.name === `${windowName}:end`)?.us;
  if (from === undefined || to === undefined) throw new Error(`no marks ${windowName}:start and :end in ${marksFile}`);
  keep = (i) => at[i]! >= from && at[i]! < to;
  console.log(`window ${windowName}: ${((to - from) / 1e6).toFixed(1)} s, from ${((from - first) / 1e6).toFixed(1)} s into the profile`);
}
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const selfUs = new Map<number, number>();
prof.samples.forEach((id, i) => {
  if (keep(i)) selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
});
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const label = (n: Node) => {
  const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '~/').replace(/^.*\/work\/main\//, '');
  return `${n.callFrame.functionName || '(anonymous)'} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
};

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  self.set(label(n), (self.get(label(n)) ?? 0) + us);
  // Each distinct frame on the stack gets the sample once (recursion counted once).
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur)!);
    if (seen.has(l)) continue;
    seen.add(l);
    inclusive.set(l, (inclusive.get(l) ?? 0) + us);
  }
}
const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${(total / 1e6).toFixed(1)} s of samples\n\nself time:`);
for (const [l, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${l}`);
console.log('\ntotal time (self + callees):');
for (const [l, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${l}`);
