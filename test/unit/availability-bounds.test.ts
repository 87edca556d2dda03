/** The core's own bounds on an availability query, whatever the edge validated: ids deduplicated and capped, range capped. */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../server/core/errors';
import { boundedQuery, DEFAULT_AVAILABILITY_LIMITS } from '../../server/core/services/availability';

const DAY = 86_400_000;
const query = (resourceIds: string[], days = 1) => ({ resourceIds, from: 0, to: days * DAY, seats: 1, mode: 'all' as const });
const problemOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as DomainError).toProblem();
  }
  return null;
};

describe('boundedQuery', () => {
  it('keeps each id once, in the order of first occurrence', () => {
    expect(boundedQuery(query(['b', 'a', 'b', 'a', 'c']), DEFAULT_AVAILABILITY_LIMITS).resourceIds).toEqual(['b', 'a', 'c']);
    const q = query(['a', 'b']);
    expect(boundedQuery(q, DEFAULT_AVAILABILITY_LIMITS)).toBe(q);
  });
  it('refuses more distinct ids than allowed, counting repeats once', () => {
    const ids = Array.from({ length: 101 }, (_, i) => `r${i}`);
    expect(boundedQuery(query([...ids.slice(0, 100), ...ids.slice(0, 100)]), DEFAULT_AVAILABILITY_LIMITS).resourceIds).toHaveLength(100);
    expect(problemOf(() => boundedQuery(query(ids), DEFAULT_AVAILABILITY_LIMITS))).toMatchObject({
      status: 422, code: 'limit-exceeded', limit: 'availability.resources', max: 100, detail: expect.stringContaining('at most 100 distinct resources'),
    });
  });
  it('refuses a range longer than allowed', () => {
    expect(boundedQuery(query(['a'], 62), DEFAULT_AVAILABILITY_LIMITS).resourceIds).toEqual(['a']);
    expect(problemOf(() => boundedQuery(query(['a'], 36_500), DEFAULT_AVAILABILITY_LIMITS))).toMatchObject({
      status: 422, code: 'limit-exceeded', limit: 'availability.range', max: 62, detail: expect.stringContaining('at most 62 days'),
    });
  });
});
