/** The client's estimate of the server's clock, which hold countdowns run on. */
import { describe, expect, it } from 'vitest';
import { ServerClock } from '../../shared/client/clock';

describe('ServerClock', () => {
  it('puts the server time at the middle of the round trip and keeps the tightest reading', () => {
    let local = 1_000_000;
    const clock = new ServerClock(() => local);
    expect(clock.offsetMs).toBe(0);
    expect(clock.uncertaintyMs).toBe(Number.POSITIVE_INFINITY);

    // The server runs 60 s ahead; a 400 ms trip.
    clock.sample({ serverMs: 1_000_200 + 60_000, sentAt: 1_000_000, receivedAt: 1_000_400 });
    expect(clock.offsetMs).toBe(60_000);
    expect(clock.uncertaintyMs).toBe(200);
    // A slower trip that reads differently does not override the tighter one.
    clock.sample({ serverMs: 1_001_000 + 50_000, sentAt: 1_000_000, receivedAt: 1_002_000 });
    expect(clock.offsetMs).toBe(60_000);
    // A tighter one does.
    clock.sample({ serverMs: 1_000_510 + 59_990, sentAt: 1_000_500, receivedAt: 1_000_520 });
    expect(clock.offsetMs).toBe(59_990);

    local = 1_000_600;
    expect(clock.now()).toBe(1_000_600 + 59_990);
    expect(clock.msUntil(new Date(1_000_600 + 59_990 + 30_000).toISOString())).toBe(30_000);
  });

  it('reads HTTP Date headers as whole seconds, and lets a stale reading be replaced', () => {
    let local = Date.parse('2027-01-11T09:00:00.000Z');
    const clock = new ServerClock(() => local);
    // The server says 09:00:10 (somewhere in that second) while the client thinks 09:00:00.
    clock.sampleDateHeader('Mon, 11 Jan 2027 09:00:10 GMT', local - 50, local + 50);
    expect(clock.offsetMs).toBe(10_500);
    expect(clock.uncertaintyMs).toBe(550);
    clock.sampleDateHeader('not a date', local, local + 10);
    clock.sampleDateHeader(null, local, local + 10);
    expect(clock.offsetMs).toBe(10_500);
    // Eleven minutes on, a looser reading replaces the old one (clocks drift).
    local += 11 * 60_000;
    clock.sample({ serverMs: local + 2_000 + 20_000, sentAt: local, receivedAt: local + 4_000 });
    expect(clock.offsetMs).toBe(20_000);
  });

  it('ignores readings that cannot be right', () => {
    const clock = new ServerClock(() => 0);
    clock.sample({ serverMs: Number.NaN, sentAt: 0, receivedAt: 10 });
    clock.sample({ serverMs: 5, sentAt: 10, receivedAt: 0 });
    expect(clock.offsetMs).toBe(0);
  });
});
