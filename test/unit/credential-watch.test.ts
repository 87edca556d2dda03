/** Watching a credential's end: function listeners (`watch`) and object watchers (`follow`/`unfollow`), on the service's own timers. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CoreDeps, Logger } from '../../server/core/ports';
import { credentialService, type CredentialWatcher, type SessionEnd } from '../../server/core/services/credentials';
import type { TenantPrincipal } from '../../server/core/types';

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;
const service = () => credentialService({ log: quiet } as unknown as CoreDeps, { adminToken: 'admin', jwtSecret: 'secret' });
const token = (tokenId: string, expiresAt: number): TenantPrincipal =>
  ({ kind: 'user', tenantId: 't', userId: 'u', name: 'U', role: 'member', tokenId, expiresAt }) as TenantPrincipal;
const watcher = () => {
  const ends: SessionEnd[] = [];
  const w: CredentialWatcher = { credentialEnded: (why) => ends.push(why) };
  return { w, ends };
};

describe('credential watches', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('tell followers once when the credential expires, and not those that unfollowed', () => {
    const credentials = service();
    const p = token('a', Date.now() + 10_000);
    const stays = watcher();
    const leaves = watcher();
    const fn: SessionEnd[] = [];
    credentials.follow(p, stays.w);
    credentials.follow(p, leaves.w);
    const unwatch = credentials.watch(p, (why) => fn.push(why));
    credentials.unfollow(p, leaves.w);
    vi.advanceTimersByTime(10_001);
    expect(stays.ends).toEqual(['expired']);
    expect(leaves.ends).toEqual([]);
    expect(fn).toEqual(['expired']);
    unwatch(); // after the end: nothing left to stop
    vi.advanceTimersByTime(60_000);
    expect(stays.ends).toEqual(['expired']);
  });

  it('tell a follower of a credential already ended on the next turn, unless it unfollows first', () => {
    const credentials = service();
    const p = token('b', Date.now() - 1);
    const told = watcher();
    const gone = watcher();
    credentials.follow(p, told.w);
    credentials.follow(p, gone.w);
    credentials.unfollow(p, gone.w);
    expect(told.ends).toEqual([]);
    vi.runAllTimers();
    expect(told.ends).toEqual(['expired']);
    expect(gone.ends).toEqual([]);
  });

  it('an unfollow from an ended watch leaves a later one of the same credential alone', () => {
    const credentials = service();
    const p = token('c', Date.now() + 1_000);
    const first = watcher();
    credentials.follow(p, first.w);
    vi.advanceTimersByTime(1_001);
    expect(first.ends).toEqual(['expired']);
    // The same token id, followed again (a principal with a later end, as a new entry is made for it).
    const again = token('c', Date.now() + 5_000);
    const second = watcher();
    credentials.follow(again, second.w);
    credentials.unfollow(p, first.w);
    vi.advanceTimersByTime(5_001);
    expect(second.ends).toEqual(['expired']);
  });
});
