/**
 * The clock of a session's identity (src/server/expiry.ts, PROTOCOL.md §3.5): when its connection is
 * asked for fresh credentials, and how often, with a fake clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IdentityExpiry, MIN_AUTH_ASK_AGAIN_MS } from '../../src/server/expiry.js';

describe('IdentityExpiry', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it.each([
    ['no fresher than the one before (the same token again)', 0],
    ['barely fresher than the one before', 1],
  ])('asks about an identity %s after half the time left, again and again, but never closer than the least spacing', async (_name, fresher) => {
    const asks: number[] = [];
    const link = {};
    let expiresAt = 10_000;
    const expiry = new IdentityExpiry<object>(
      {
        link: () => link,
        // The client answers each ask with the same token: an identity that expires when the last did.
        ask: () => {
          asks.push(Date.now());
          queueMicrotask(() => expiry.adopt((expiresAt += fresher)));
        },
        expire: () => asks.push(-1),
      },
      () => Date.now(),
    );
    expiry.adopt(expiresAt);
    await vi.advanceTimersByTimeAsync(10_100);
    // Asked at half the time left, again and again (5 000, 7 500, 8 750 …), never nearer than the floor.
    expect(asks.at(-1)).toBe(-1);
    const times = asks.slice(0, -1);
    expect(times.slice(0, 3)).toEqual(fresher === 0 ? [5_000, 7_500, 8_750] : [5_000, 7_501, 8_752]);
    const gaps = times.slice(1).map((at, i) => at - times[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(MIN_AUTH_ASK_AGAIN_MS);
    expect(times.length).toBeLessThanOrEqual(7);
  });
});
