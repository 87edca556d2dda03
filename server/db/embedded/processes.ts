/** Is a process alive, and which one is it: small /proc readers shared by the data-directory lock and the stale-Postgres check. */
import { readFileSync } from 'node:fs';

/**
 * The kernel's start time of `pid` (clock ticks since boot, field 22 of
 * /proc/<pid>/stat), or null where /proc is unavailable. Together with the pid
 * it names one process: a pid reused after a crash or a reboot gets another.
 */
export function startTimeOf(pid: number): string | null {
  const fields = statFields(pid);
  return fields ? (fields[19] ?? null) : null;
}

/** Fields 3… of /proc/<pid>/stat (after the command name, which may hold spaces), or null. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * True when `pid` runs and is not a zombie; with `startTime`, only when it is
 * still the same process (not a later one that got the pid).
 */
export function processAlive(pid: number, startTime?: string | null): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const fields = statFields(pid);
  if (!fields) return true; // no /proc (macOS): signal 0 is all we know
  if (fields[0] === 'Z' || fields[0] === 'X') return false;
  return !startTime || fields[19] === startTime;
}

/** The command line of `pid` as one string (arguments joined by spaces), or null where /proc is unavailable. */
export function commandLineOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return null;
  }
}

/** Resolves once `pid` is gone, or false after `ms`. */
export async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (processAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
