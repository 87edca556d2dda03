/** P5's idle-CPU row: Slotwise's idle CPU against Hocuspocus's, or why the comparison was not measured. */
import type { Row } from './context';

export interface IdleCpu {
  /** Server CPU over the window, % of a core. */
  cpuPercent: number;
  /** How many of the clients had synced when the window began. */
  synced: number;
}

/**
 * The least CPU Hocuspocus can use with the idle clients connected for the
 * ratio to mean anything (% of a core). CPU time is read in 10 ms ticks: over
 * P5's 20 s a tick is 0.05% of a core, and ¼ of this floor is 5 ticks. With
 * 500 clients renewing their presence Hocuspocus used about 30% of a core in
 * the runs of docs/benchmarks.md: a figure under the floor means its clients
 * were not there (failed to connect, or dropped), not that it is idle.
 */
export const PEER_IDLE_CPU_FLOOR_PERCENT = 1;

/**
 * The row: the ratio against the ¼ target when both sides had all `clients`
 * synced and Hocuspocus's figure is at least the floor; otherwise "not
 * measured" and not met, with the reason in the note.
 */
export function idleCpuRow(s: IdleCpu, h: IdleCpu, clients: number, windowS: number): Row {
  const base = {
    id: 'P5', what: `idle CPU, ${clients} clients on one document (${windowS} s, % of a core)`,
    figure: `${s.cpuPercent.toFixed(2)}%`, peer: `Hocuspocus ${h.cpuPercent.toFixed(2)}%`, target: '≤ ¼ of Hocuspocus',
  };
  const why = [
    s.synced < clients ? `only ${s.synced} of ${clients} Slotwise clients synced` : '',
    h.synced < clients ? `only ${h.synced} of ${clients} Hocuspocus clients synced` : '',
    !(h.cpuPercent >= PEER_IDLE_CPU_FLOOR_PERCENT)
      ? `Hocuspocus used ${h.cpuPercent.toFixed(2)}% of a core, under the ${PEER_IDLE_CPU_FLOOR_PERCENT}% floor for a server holding ${clients} clients (its clients were not there)`
      : '',
  ].filter(Boolean);
  if (why.length) return { ...base, ratio: 'not measured', met: false, note: `not measured: ${why.join('; ')}` };
  return { ...base, ratio: `${(s.cpuPercent / h.cpuPercent).toFixed(2)}×`, met: s.cpuPercent <= h.cpuPercent / 4 };
}
