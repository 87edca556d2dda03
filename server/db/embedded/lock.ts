/**
 * One data directory, one server: `DATA_DIR/server.lock` names the process
 * that runs the embedded Postgres of that directory. A second start finds it
 * and stops with the holder's pid; a lock whose holder is gone (kill -9, a
 * crash, a reboot) is taken over.
 */
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EmbeddedPostgresError } from './error';
import { processAlive, startTimeOf } from './processes';

interface Holder {
  pid: number;
  /** /proc start time of the holder, so a recycled pid does not count as the holder. */
  startTime: string | null;
}

export interface DataDirLock {
  /** Removes the lock file if it is still ours. */
  release(): void;
}

function readHolder(file: string): Holder | null {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Holder;
    return Number.isInteger(h.pid) ? h : null;
  } catch {
    return null;
  }
}

const sameHolder = (a: Holder | null, b: Holder | null) => !!a && !!b && a.pid === b.pid && a.startTime === b.startTime;

/** Takes `dir/server.lock` for this process, or throws EmbeddedPostgresError naming the live holder. */
export function lockDataDir(dir: string): DataDirLock {
  const file = path.join(dir, 'server.lock');
  const me: Holder = { pid: process.pid, startTime: startTimeOf(process.pid) };
  // Written whole under a private name, then linked into place: link() fails when the lock exists,
  // so exactly one process wins, and nobody ever reads a half-written lock.
  const mine = `${file}.${process.pid}`;
  writeFileSync(mine, JSON.stringify(me) + '\n', { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(mine, file);
        return {
          release() {
            if (sameHolder(readHolder(file), me)) unlinkSync(file);
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = readHolder(file);
      if (holder && processAlive(holder.pid, holder.startTime)) {
        throw new EmbeddedPostgresError(
          `another Slotwise (pid ${holder.pid}) is using the data directory ${dir}. ` +
            `Stop it first (kill -TERM ${holder.pid}), or give this one another DATA_DIR.`,
        );
      }
      // Stale (its holder is gone) or unreadable: move it aside under our own name, then check it is
      // the stale one we judged, and not a fresh lock another starter took in between; give that back.
      const aside = `${file}.stale.${process.pid}`;
      try {
        renameSync(file, aside);
      } catch {
        continue;
      }
      const moved = readHolder(aside);
      if (moved && !sameHolder(moved, holder) && processAlive(moved.pid, moved.startTime)) {
        try {
          linkSync(aside, file);
        } catch {
          // someone else holds it now: the next attempt reports them
        }
      }
      unlinkSync(aside);
    }
    throw new EmbeddedPostgresError(`could not take the lock ${file}: other starts keep taking it; try again`);
  } finally {
    unlinkSync(mine);
  }
}
