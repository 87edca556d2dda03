import { describe, expect, it } from 'vitest';
import { isoFormatter } from '../../server/core/services/availability';

describe('isoFormatter', () => {
  it('writes exactly what toISOString writes', () => {
    const format = isoFormatter();
    const edges = [0, -1, 1, 86_399_999, 86_400_000, -86_400_000, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2028, 1, 29, 12), Date.UTC(1969, 11, 31, 23, 59, 59, 1),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(10000, 0, 1), Date.UTC(-1, 5, 1, 7, 30), 8.64e15, -8.64e15];
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const samples = [...edges, ...Array.from({ length: 20_000 }, () => Math.floor((random() - 0.5) * 2 * 4e12))];
    for (const ms of samples) expect(format(ms), String(ms)).toBe(new Date(ms).toISOString());
    // Again, now that every day's prefix is remembered.
    for (const ms of samples) expect(format(ms), String(ms)).toBe(new Date(ms).toISOString());
  });
});
