/** The node's connection pools and what each promises about commits. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type TestNode } from '../helpers/node';

let t: TestNode;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => t.stop());

const setting = async (pool: { query: (sql: string) => Promise<{ rows: { synchronous_commit: string }[] }> }) => (await pool.query('SHOW synchronous_commit')).rows[0]!.synchronous_commit;

describe('pools', () => {
  it('commits bookings durably and only Yjs updates without waiting for the WAL flush', async () => {
    const { db } = t.node;
    expect(await setting(db.pool)).toBe('on');
    expect(await setting(db.relayPool)).toBe('on');
    expect(await setting(db.asyncCommitPool)).toBe('off');
  });
});
