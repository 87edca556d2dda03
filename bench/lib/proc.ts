/**
 * Child processes of a bench run: each in its own process group, so a stop
 * takes the whole group down; every wait has a deadline; `stopAll` runs on
 * success, failure and signals alike.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { mark } from './marks';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  /** Resolves with the first stdout line starting with `tag ` (parsed as JSON after the tag). */
  line<T = unknown>(tag: string, timeoutMs: number): Promise<T>;
  /** Lines seen so far (stdout and stderr), for error reports. */
  tail(): string;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>;
  /** Raise the open-files limit in a shell before exec (the hard limit bounds it). */
  nofile?: number;
  /** Print every line with a prefix (else only kept for tail()). */
  echo?: boolean;
}

const live = new Set<Proc>();
// Folders holding configurations too long for a command line; removed by stopAll.
const configDirs = new Set<string>();

/** Starts `cmd args` in its own process group. */
export function start(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const [file, argv] = opts.nofile
    ? ['bash', ['-c', `ulimit -n ${opts.nofile} && exec "$0" "$@"`, cmd, ...args]]
    : [cmd, args];
  const child = spawn(file, argv, { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const lines: string[] = [];
  // Tagged lines (`READY {...}`, `RESULT {...}`) nobody has asked for yet.
  const unclaimed: string[] = [];
  const waiters: { tag: string; resolve: (v: any) => void; reject: (e: Error) => void }[] = [];
  const tagged = (line: string, tag: string) => line.startsWith(tag + ' ') || line === tag;
  const deliver = (w: (typeof waiters)[number], line: string) => {
    const rest = line.slice(w.tag.length).trim();
    try {
      w.resolve(rest ? JSON.parse(rest) : null);
    } catch (err) {
      w.reject(new Error(`${name}: bad ${w.tag} line: ${(err as Error).message}`));
    }
  };
  const onLine = (line: string) => {
    lines.push(line);
    if (lines.length > 200) lines.shift();
    if (opts.echo) process.stderr.write(`  [${name}] ${line}\n`);
    const w = waiters.find((x) => tagged(line, x.tag));
    if (w) {
      waiters.splice(waiters.indexOf(w), 1);
      deliver(w, line);
    } else if (/^[A-Z]+( |$)/.test(line)) unclaimed.push(line);
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(p);
      for (const w of waiters.splice(0)) w.reject(new Error(`${name} exited (${signal ?? code}) before ${w.tag}:\n${lines.slice(-30).join('\n')}`));
      resolve(signal ?? code ?? 0);
    });
    child.on('error', (err) => {
      live.delete(p);
      for (const w of waiters.splice(0)) w.reject(err);
      resolve('error');
    });
  });
  const p: Proc = {
    name,
    child,
    pid: child.pid!,
    exited,
    line<T>(tag: string, timeoutMs: number) {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`${name}: no "${tag}" within ${timeoutMs} ms:\n${lines.slice(-30).join('\n')}`));
        }, timeoutMs);
        const w = {
          tag,
          resolve: (v: T) => (clearTimeout(timer), resolve(v)),
          reject: (e: Error) => (clearTimeout(timer), reject(e)),
        };
        const early = unclaimed.findIndex((l) => tagged(l, tag));
        if (early >= 0) return deliver(w, unclaimed.splice(early, 1)[0]!);
        waiters.push(w);
      });
    },
    tail: () => lines.slice(-30).join('\n'),
    async stop(signal = 'SIGTERM', graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      kill(child.pid!, signal);
      const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!done) {
        kill(child.pid!, 'SIGKILL');
        await Promise.race([exited, sleep(2_000)]);
      }
    },
  };
  live.add(p);
  return p;
}

/** Signals the process group of `pid` (and the process itself if the group is gone). */
function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Runs a bench worker (a TypeScript file under bench/workers) and returns its `RESULT` line. */
export async function runWorker<T>(name: string, file: string, config: unknown, timeoutMs: number, opts: SpawnOptions = {}): Promise<T> {
  const p = startWorker(name, file, config, opts);
  try {
    return await p.line<T>('RESULT', timeoutMs);
  } finally {
    await p.stop();
  }
}

/** Starts a long-lived bench worker; wait for its `READY` line with `p.line('READY', ms)`. */
export function startWorker(name: string, file: string, config: unknown, opts: SpawnOptions = {}): Proc {
  let arg = JSON.stringify(config);
  if (arg.length > 64_000) {
    // Command lines are limited (E2BIG): hand a long configuration over in a file.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'slotwise-bench-config-'));
    configDirs.add(dir);
    writeFileSync(path.join(dir, 'config.json'), arg);
    arg = '@' + path.join(dir, 'config.json');
  }
  mark(`${name}:start`);
  const p = start(name, process.execPath, ['--import', 'tsx', path.join('bench', 'workers', file), arg], opts);
  void p.exited.then(() => mark(`${name}:end`));
  return p;
}

/** Stops every process still running, process groups and all. */
export async function stopAll(): Promise<void> {
  // A node writes its CPU profile (BENCH_CPU_PROF) only when it exits by itself: give its shutdown time to finish.
  await Promise.all([...live].map((p) => p.stop('SIGTERM', process.env.BENCH_CPU_PROF ? 30_000 : 4_000)));
  for (const dir of configDirs) rmSync(dir, { recursive: true, force: true });
  configDirs.clear();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resident set size of a process in bytes (VmRSS). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** CPU time (user + system) a process has used so far, in milliseconds. */
export async function cpuMsOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of /proc/pid/stat (11 and 12 after the command).
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}
