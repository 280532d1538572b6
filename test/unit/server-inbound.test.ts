/**
 * A session's batches taken in at its message rate (src/server/inbound.ts, PROTOCOL.md §12.1.slow):
 * a batch past the budget goes over in slices of the budget, each once the budget is out of debt, and
 * what arrives meanwhile waits behind, in order. On fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { UpstreamFrame } from '../../src/server/connection.js';
import { InboundLine, slicesOf } from '../../src/server/inbound.js';

const messages = (from: number, count: number): UpstreamFrame[] => Array.from({ length: count }, (_, i): UpstreamFrame => ({ t: 'msg', s: from + i, data: from + i }));
const numbers = (slice: readonly UpstreamFrame[]): number[] => slice.flatMap((frame) => (frame.t === 'msg' ? [frame.s] : []));

describe('slicesOf', () => {
  it('cuts after every perSlice messages and keeps other frames in their place', () => {
    const frames: UpstreamFrame[] = [{ t: 'ping', n: 1 }, ...messages(1, 3), { t: 'ping', n: 2 }, ...messages(4, 2), { t: 'bye' }];
    expect(slicesOf(frames, 2).map((slice) => slice.map((frame) => (frame.t === 'msg' ? frame.s : frame.t)))).toEqual([
      ['ping', 1, 2],
      [3, 'ping', 4],
      [5, 'bye'],
    ]);
    expect(slicesOf(messages(1, 4), 4)).toHaveLength(1);
  });
});

describe('InboundLine', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('hands a batch within the budget over at once, in the caller\'s turn', () => {
    const line = new InboundLine(100, () => 0);
    const steps: [number[], boolean][] = [];
    line.take(messages(1, 100), (slice, last) => steps.push([numbers(slice), last]), () => true);
    expect(steps).toEqual([[numbers(messages(1, 100)), true]]);
    expect(line.behind()).toBe(0);
  });

  it('hands a larger batch over a slice at a time, each once the budget is out of debt, and says how long the rest takes', () => {
    let debt = 0;
    const line = new InboundLine(100, () => debt);
    const steps: [number, boolean][] = [];
    line.take(
      messages(1, 250),
      (slice, last) => {
        steps.push([numbers(slice).at(-1)!, last]);
        debt = 1_000;
      },
      () => true,
    );
    expect(steps).toEqual([[100, false]]);
    expect(line.behind()).toBe(1_500);
    vi.advanceTimersByTime(999);
    expect(steps).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(steps).toEqual([
      [100, false],
      [200, false],
    ]);
    vi.advanceTimersByTime(1_000);
    expect(steps.at(-1)).toEqual([250, true]);
    expect(line.behind()).toBe(0);
  });

  it('keeps a batch that arrives meanwhile behind the slices before it, and drops the slices of a batch nobody waits for', () => {
    const line = new InboundLine(10, () => 100);
    const handed: number[] = [];
    let firstLive = true;
    line.take(messages(1, 30), (slice) => handed.push(...numbers(slice)), () => firstLive);
    line.take(messages(31, 5), (slice) => handed.push(...numbers(slice)), () => true);
    expect(handed).toEqual(numbers(messages(1, 10)));
    vi.advanceTimersByTime(100);
    expect(handed).toEqual(numbers(messages(1, 20)));
    // The first batch's link went away: its last slice is dropped (its client sends it again).
    firstLive = false;
    vi.advanceTimersByTime(100);
    expect(handed).toEqual([...numbers(messages(1, 20)), ...numbers(messages(31, 5))]);
  });

  it('drops what waits once cleared (the session ended)', () => {
    const line = new InboundLine(10, () => 100);
    const handed: number[] = [];
    line.take(messages(1, 30), (slice) => handed.push(...numbers(slice)), () => true);
    line.clear();
    vi.advanceTimersByTime(1_000);
    expect(handed).toHaveLength(10);
    expect(line.behind()).toBe(0);
  });
});
