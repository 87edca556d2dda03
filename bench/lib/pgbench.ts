/**
 * pgbench, Postgres's own load generator, running the scripts of bench/sql,
 * and the check that those scripts run the very statements the server ran.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, start } from './proc';

/** A statement reduced to its shape: comments and parameters gone, whitespace collapsed. */
export function shape(sql: string): string {
  return sql
    .replace(/--[^\n]*/g, ' ')
    .replace(/\\gset\s*$/, '')
    .replace(/\$\d+/g, '?')
    .replace(/(^|[^:]):[a-z_][a-z0-9_]*/gi, '$1?')
    .replace(/\s+/g, ' ')
    .replace(/\s*;\s*$/, '')
    .trim();
}

/** The SQL statements of a pgbench script, in order (meta-commands left out). */
export function scriptStatements(file: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of readFileSync(path.join(ROOT, 'bench', 'sql', file), 'utf8').split('\n')) {
    const line = raw.replace(/--.*$/, '');
    if (!cur && line.trim().startsWith('\\')) continue;
    if (!line.trim()) continue;
    cur += line + '\n';
    if (/;\s*$/.test(line) || /\\gset\s*$/.test(line)) {
      out.push(shape(cur));
      cur = '';
    }
  }
  return out;
}

/** Statements pgbench runs in another form than the server (none since the outbox pass left the request path). */
const STAND_INS = new Map<string, string>();

/**
 * Checks that each of `transactions` (the server's statements for one
 * operation, captured from its pg client) appears in the script in order, and
 * that the script runs nothing else but statements the server ran (`alsoRan`
 * holds those outside transactions) and its bench_input lookup. Returns the
 * problems (none when they match).
 */
export function compareWithServer(file: string, transactions: string[][], alsoRan: string[]): string[] {
  const script = scriptStatements(file).map((s) => STAND_INS.get(s) ?? s);
  const known = new Set([...transactions.flat(), ...alsoRan].map(shape));
  const problems: string[] = [];
  for (const tx of transactions) {
    const server = tx.map(shape);
    const at = script.indexOf(server[0]!);
    server.forEach((s, i) => {
      if (at < 0 || script[at + i] !== s) problems.push(`server statement ${i + 1} is not in ${file} at that place: ${s.slice(0, 140)}`);
    });
  }
  for (const s of script) {
    if (!known.has(s) && !s.startsWith('SELECT rids, froms, tos') && !['BEGIN', 'COMMIT', 'ROLLBACK'].includes(s)) {
      problems.push(`${file} runs a statement the server did not: ${s.slice(0, 140)}`);
    }
  }
  return problems;
}

export interface PgbenchResult {
  tps: number;
  latencyAvgMs: number;
  transactions: number;
  failed: number;
  aborted: boolean;
  output: string;
}

/** Runs pgbench with `args` against `url`; resolves with its figures. */
export async function pgbench(url: string, file: string, args: string[], vars: Record<string, string | number>, timeoutMs: number): Promise<PgbenchResult> {
  const bin = process.env.PGBENCH ?? 'pgbench';
  const argv = ['-n', '-M', 'prepared', ...args, ...Object.entries(vars).flatMap(([k, v]) => ['-D', `${k}=${v}`]), '-f', path.join('bench', 'sql', file), url];
  const p = start('pgbench', bin, argv);
  const timer = setTimeout(() => void p.stop('SIGINT'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  const out = p.tail();
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
  if (!tps) throw new Error(`pgbench ${file} failed (${code}):\n${out}`);
  return {
    tps: Number(tps[1]),
    latencyAvgMs: Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? NaN),
    transactions: Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? NaN),
    failed: Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0),
    aborted: /aborted|Run was aborted/i.test(out),
    output: out,
  };
}
