/** The parsed-query memo of openapi.ts: repeated query strings share one frozen result; many distinct ones keep answering correctly. */
import { z } from '@hono/zod-openapi';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { query } from '../../server/http/openapi';

const Schema = z.object({ ids: z.string().transform((s) => s.split(',')), n: z.coerce.number().int() }).strict();

describe('query()', () => {
  it('memoizes by query string, bounded: the same string gives the same frozen object, distinct ones their own', async () => {
    const seen: unknown[] = [];
    const app = new Hono();
    app.onError((err, c) => c.text(err.message, 400));
    app.get('/q', (c) => {
      const q = query(c, Schema);
      seen.push(q);
      return c.json(q);
    });
    await app.request('/q?ids=a,b&n=1');
    await app.request('/q?ids=a,b&n=1');
    expect(seen[1]).toBe(seen[0]);
    expect(Object.isFrozen(seen[0])).toBe(true);
    // Far more distinct long strings than the memo keeps (1,000 entries, 2 MiB): each is still parsed right.
    const pad = 'x'.repeat(8_000);
    for (let i = 0; i < 3_000; i++) {
      const res = await app.request(`/q?ids=${pad},${i}&n=${i}`);
      const body = (await res.json()) as { ids: string[]; n: number };
      expect(body.n).toBe(i);
      expect(body.ids[1]).toBe(String(i));
    }
    expect((await app.request('/q?ids=a&n=x')).status).toBe(400);
  });
});
