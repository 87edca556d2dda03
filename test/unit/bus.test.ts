/** The Redis bus against the machine's Redis, through a proxy the test cuts. */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { RedisBus } from '../../server/bus/bus';
import { waitFor } from '../helpers/node';
import { redisProxy } from '../helpers/redis-proxy';

const log = { info() {}, warn() {}, error() {}, debug() {} };
const closing: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closing) await close().catch(() => {});
});

describe('RedisBus', () => {
  it('sends SUBSCRIBE again after one failed: the next subscribe to the channel receives', async () => {
    const redisUrl = inject('redisUrl');
    const proxy = await redisProxy(redisUrl);
    closing.push(proxy.close);
    proxy.cut();
    const bus = new RedisBus('listener', proxy.url, log);
    const other = new RedisBus('speaker', redisUrl, log);
    closing.push(() => bus.close(), () => other.close());
    const channel = `test:bus:${randomUUID()}`;
    const got: unknown[] = [];
    await expect(bus.subscribe(channel, (env) => got.push(env.payload))).rejects.toThrow();
    proxy.restore();
    await bus.subscribe(channel, (env) => got.push(env.payload));
    await waitFor(async () => {
      await other.publish(channel, 'note', 'hello');
      return got.length > 0;
    }, 10_000, 'a message on the channel subscribed again');
    expect(got[0]).toBe('hello');
  });
});
