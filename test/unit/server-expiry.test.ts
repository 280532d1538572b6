/**
 * The clock of a session's identity (src/server/expiry.ts, PROTOCOL.md §3.5): when its connection is
 * asked for fresh credentials, and how often, with a fake clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IdentityExpiry, MIN_AUTH_ASK_AGAIN_MS } from '../../src/server/expiry.js';

describe('IdentityExpiry', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('asks about an identity no fresher than the one before after half the time left, again and again, but never sooner than the least spacing', async () => {
    const asks: number[] = [];
    const link = {};
    const expiry = new IdentityExpiry<object>(
      {
        link: () => link,
        // The client answers each ask with the same token: an identity that expires when the last did.
        ask: () => {
          asks.push(Date.now());
          queueMicrotask(() => expiry.adopt(10_000));
        },
        expire: () => asks.push(-1),
      },
      () => Date.now(),
    );
    expiry.adopt(10_000);
    await vi.advanceTimersByTimeAsync(10_000);
    // Asked at half the time left, again and again (5 000, 7 500, 8 750 …), never nearer than the floor.
    expect(asks.at(-1)).toBe(-1);
    const times = asks.slice(0, -1);
    expect(times.slice(0, 3)).toEqual([5_000, 7_500, 8_750]);
    const gaps = times.slice(1).map((at, i) => at - times[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(MIN_AUTH_ASK_AGAIN_MS);
    expect(times).toHaveLength(5);
  });
});
