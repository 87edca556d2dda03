/** The results table: printed, and written into docs/benchmarks.md with machine, date and commit. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Row } from './context';
import { ROOT } from './proc';

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';

/** The table as Markdown. */
export function printTable(rows: Row[], opts: { partial?: boolean } = {}): string {
  const head = ['id', 'measure', 'Slotwise', 'limit / peer, same run', 'ratio', 'target', 'met'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) {
    lines.push(`| ${[r.id, r.what, r.figure, r.peer, r.ratio, r.target, r.met ? 'met' : `**not met** (why: see the analysis)${r.note ? `; ${r.note}` : ''}`].map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  const notes = rows.filter((r) => r.met && r.note).map((r) => `- ${r.id} ${r.what}: ${r.note}`);
  return [opts.partial ? '(partial run)\n' : '', lines.join('\n'), notes.length ? '\n' + notes.join('\n') : ''].join('\n');
}

/** Machine, date and commit of this run. */
export function environment(): string {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  const commit = git('rev-parse', '--short', 'HEAD') || 'unknown';
  const dirty = git('status', '--porcelain').length > 0 ? ' (with uncommitted changes)' : '';
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  let pgVersion = '';
  try {
    pgVersion = execFileSync(process.env.PGBENCH ?? 'pgbench', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // left out
  }
  return [
    `- date: ${new Date().toISOString()}`,
    `- commit: ${commit}${dirty}`,
    `- machine: ${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}`,
    `- Node ${process.version}; ${pgVersion}`,
  ].join('\n');
}

/** Replaces the results section of docs/benchmarks.md (the analysis around it stays). */
export async function writeDocs(rows: Row[], run: { seconds: number; load: { start: number; end: number } }): Promise<void> {
  const file = path.join(ROOT, 'docs', 'benchmarks.md');
  const section = [
    START, '', environment(),
    `- the whole run took ${run.seconds.toFixed(0)} s; load average (1 min) ${run.load.start.toFixed(2)} at start, ${run.load.end.toFixed(2)} at end`,
    '', printTable(rows), '', END,
  ].join('\n');
  const current = existsSync(file) ? readFileSync(file, 'utf8') : `# Benchmarks\n\n${START}\n${END}\n`;
  const a = current.indexOf(START);
  const b = current.indexOf(END);
  const next = a >= 0 && b > a ? current.slice(0, a) + section + current.slice(b + END.length) : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
}
