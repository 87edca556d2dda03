/**
 * Time marks for CPU profiles. With BENCH_CPU_PROF=<dir>, every bench worker
 * run (and each step of P5's ramp) appends `{name, us}` lines to
 * `<dir>/marks.jsonl`: microseconds on CLOCK_MONOTONIC, the clock V8 stamps
 * its profile samples with, so `bench/profile.ts <file> --window <name>`
 * keeps only the samples taken between `<name>:start` and `<name>:end`.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const dir = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : null;

export function mark(name: string): void {
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  appendFileSync(path.join(dir, 'marks.jsonl'), JSON.stringify({ name, us: Number(process.hrtime.bigint() / 1000n) }) + '\n');
}
