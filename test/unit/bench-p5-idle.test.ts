/** bench P5's idle-CPU row: a ratio only when both servers held all their clients and Hocuspocus's CPU is a real figure. */
import { describe, expect, it } from 'vitest';
import { idleCpuRow, PEER_IDLE_CPU_FLOOR_PERCENT } from '../../bench/lib/p5-idle';

const all = 500;

describe('P5 idle CPU row', () => {
  it('compares with the ratio when both sides are measured', () => {
    const met = idleCpuRow({ cpuPercent: 2.85, synced: all }, { cpuPercent: 32.75, synced: all }, all, 20);
    expect(met).toMatchObject({ ratio: '0.09×', met: true, figure: '2.85%', peer: 'Hocuspocus 32.75%' });
    expect(met.note).toBeUndefined();
    expect(idleCpuRow({ cpuPercent: 9, synced: all }, { cpuPercent: 30, synced: all }, all, 20)).toMatchObject({ ratio: '0.30×', met: false });
  });

  it('says not measured, never a ratio, when Hocuspocus used (next to) no CPU', () => {
    for (const peer of [0, 0.05, PEER_IDLE_CPU_FLOOR_PERCENT - 0.01, Number.NaN]) {
      const row = idleCpuRow({ cpuPercent: 0, synced: all }, { cpuPercent: peer, synced: all }, all, 20);
      expect(row.ratio, `peer ${peer}`).toBe('not measured');
      expect(row.met).toBe(false);
      expect(row.note).toMatch(/^not measured: Hocuspocus used .*% of a core, under the 1% floor/);
    }
    expect(idleCpuRow({ cpuPercent: 0.2, synced: all }, { cpuPercent: PEER_IDLE_CPU_FLOOR_PERCENT, synced: all }, all, 20).ratio).toBe('0.20×');
  });

  it('says not measured when either side\'s clients did not all come up', () => {
    const peerShort = idleCpuRow({ cpuPercent: 2, synced: all }, { cpuPercent: 30, synced: 312 }, all, 20);
    expect(peerShort).toMatchObject({ ratio: 'not measured', met: false, note: 'not measured: only 312 of 500 Hocuspocus clients synced' });
    const ownShort = idleCpuRow({ cpuPercent: 0.1, synced: 250 }, { cpuPercent: 30, synced: all }, all, 20);
    expect(ownShort).toMatchObject({ ratio: 'not measured', met: false, note: 'not measured: only 250 of 500 Slotwise clients synced' });
    const both = idleCpuRow({ cpuPercent: 0.1, synced: 0 }, { cpuPercent: 0, synced: 0 }, all, 20);
    expect(both.note).toContain('Slotwise clients synced; only 0 of 500 Hocuspocus clients synced; Hocuspocus used 0.00%');
  });
});
