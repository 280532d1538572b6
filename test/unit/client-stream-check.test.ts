/**
 * The check of an open stream (PROTOCOL.md §13.3, "Checking an open stream") on a fake clock: a
 * ping's pong must come down the stream within STREAM_CHECK_DEADLINE of its POST's answer; checks
 * run back to back when the stream opens, then a round every STREAM_CHECK_INTERVAL while messages flow.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../src/client/index.js';
import {
  STREAM_CHECKS_AT_OPEN,
  STREAM_CHECKS_PER_ROUND,
  STREAM_CHECK_DEADLINE,
  STREAM_CHECK_INTERVAL,
  StreamCheck,
} from '../../src/client/stream-check.js';

const clock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A check whose pings the test answers by hand. */
function harness() {
  const pings: { pong: () => void; answered: () => void }[] = [];
  let heldBack = 0;
  const check = new StreamCheck({ clock, ping: (pong, answered) => pings.push({ pong, answered }), heldBack: () => heldBack++ });
  return { check, pings, heldBack: () => heldBack };
}

describe('StreamCheck (§13.3)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs its checks back to back when the stream opens, each after the previous pong, then waits', async () => {
    const { check, pings, heldBack } = harness();
    check.start();
    for (let i = 1; i <= STREAM_CHECKS_AT_OPEN; i++) {
      expect(pings).toHaveLength(i);
      pings[i - 1]!.answered();
      pings[i - 1]!.pong();
    }
    expect(pings).toHaveLength(STREAM_CHECKS_AT_OPEN);
    await vi.advanceTimersByTimeAsync(10 * STREAM_CHECK_DEADLINE);
    expect(heldBack()).toBe(0);
    check.stop();
  });

  it('passes a pong that came before its POST was answered', () => {
    const { check, pings } = harness();
    check.start();
    pings[0]!.pong();
    expect(pings).toHaveLength(1);
    pings[0]!.answered();
    expect(pings).toHaveLength(2);
    check.stop();
  });

  it('reports a stream held back when the pong is not there STREAM_CHECK_DEADLINE after the answer, once', async () => {
    const { check, pings, heldBack } = harness();
    check.start();
    pings[0]!.answered();
    await vi.advanceTimersByTimeAsync(STREAM_CHECK_DEADLINE - 1);
    expect(heldBack()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(heldBack()).toBe(1);
    pings[0]!.pong();
    await vi.advanceTimersByTimeAsync(STREAM_CHECK_INTERVAL * 2);
    expect(heldBack()).toBe(1);
    expect(pings).toHaveLength(1);
  });

  it('sends nothing on an idle stream after the checks at open; checks a round again once messages flowed', async () => {
    const { check, pings } = harness();
    check.start();
    for (let i = 0; i < STREAM_CHECKS_AT_OPEN; i++) {
      pings[i]!.answered();
      pings[i]!.pong();
    }
    const atOpen = pings.length;
    expect(atOpen).toBe(STREAM_CHECKS_AT_OPEN);
    await vi.advanceTimersByTimeAsync(STREAM_CHECK_INTERVAL * 3);
    expect(pings).toHaveLength(atOpen);
    check.sawMessage();
    await vi.advanceTimersByTimeAsync(STREAM_CHECK_INTERVAL);
    expect(pings).toHaveLength(atOpen + 1);
    pings.at(-1)!.answered();
    pings.at(-1)!.pong();
    expect(pings).toHaveLength(atOpen + STREAM_CHECKS_PER_ROUND);
    check.stop();
  });

  it('reports nothing and sends nothing once stopped', async () => {
    const { check, pings, heldBack } = harness();
    check.start();
    pings[0]!.answered();
    check.stop();
    await vi.advanceTimersByTimeAsync(STREAM_CHECK_INTERVAL * 2);
    pings[0]!.pong();
    expect(heldBack()).toBe(0);
    expect(pings).toHaveLength(1);
  });
});
