/**
 * The server's event emitter: listeners run in the order they were first added, once each per emit,
 * a `once` listener only for the next emit, and a throwing listener neither stops the others nor the
 * caller. Changes made while an emit runs apply from the next emit on.
 */
import { describe, expect, it, vi } from 'vitest';
import { Emitter } from '../../src/server/emitter.js';

type Events = { tick: [n: number]; other: [] };

function make(): { emitter: Emitter<Events>; errors: unknown[] } {
  const errors: unknown[] = [];
  return { emitter: new Emitter<Events>((error) => errors.push(error)), errors };
}

describe('server emitter', () => {
  it('calls listeners in the order they were added, with the arguments of the emit', () => {
    const { emitter } = make();
    const calls: string[] = [];
    emitter.on('tick', (n) => calls.push(`a${n}`));
    emitter.on('tick', (n) => calls.push(`b${n}`));
    emitter.emit('tick', 1);
    emitter.emit('other');
    expect(calls).toEqual(['a1', 'b1']);
  });

  it('keeps one listener added twice, in its first place', () => {
    const { emitter } = make();
    const calls: string[] = [];
    const a = (): number => calls.push('a');
    emitter.on('tick', a);
    emitter.on('tick', () => calls.push('b'));
    emitter.on('tick', a);
    expect(emitter.listenerCount('tick')).toBe(2);
    emitter.emit('tick', 1);
    expect(calls).toEqual(['a', 'b']);
  });

  it('runs a once listener for the next emit only, also when it emits again from inside', () => {
    const { emitter } = make();
    const calls: number[] = [];
    emitter.once('tick', (n) => {
      calls.push(n);
      if (n === 1) emitter.emit('tick', 2);
    });
    emitter.emit('tick', 1);
    emitter.emit('tick', 3);
    expect(calls).toEqual([1]);
    expect(emitter.listenerCount('tick')).toBe(0);
  });

  it('removes a listener with off() or the function on() returned', () => {
    const { emitter } = make();
    const calls: string[] = [];
    const a = (): number => calls.push('a');
    emitter.on('tick', a);
    const offB = emitter.on('tick', () => calls.push('b'));
    emitter.off('tick', a);
    offB();
    emitter.off('tick', a);
    emitter.emit('tick', 1);
    expect(calls).toEqual([]);
    expect(emitter.listenerCount('tick')).toBe(0);
  });

  it('applies listeners added or removed during an emit from the next emit on', () => {
    const { emitter } = make();
    const calls: string[] = [];
    const late = (): number => calls.push('late');
    const removed = (): number => calls.push('removed');
    emitter.on('tick', (n) => {
      calls.push(`first${n}`);
      if (n === 1) {
        emitter.on('tick', late);
        emitter.off('tick', removed);
      }
    });
    emitter.on('tick', removed);
    emitter.emit('tick', 1);
    expect(calls).toEqual(['first1', 'removed']);
    calls.length = 0;
    emitter.emit('tick', 2);
    expect(calls).toEqual(['first2', 'late']);
  });

  it('hands a listener error over and goes on with the other listeners', () => {
    const { emitter, errors } = make();
    const calls: string[] = [];
    const failure = new Error('listener failed');
    emitter.on('tick', () => {
      throw failure;
    });
    emitter.on('tick', () => calls.push('after'));
    expect(() => emitter.emit('tick', 1)).not.toThrow();
    expect(errors).toEqual([failure]);
    expect(calls).toEqual(['after']);
  });

  it('hands over the rejection of an async listener, which would otherwise end the process as an unhandled rejection', async () => {
    const { emitter, errors } = make();
    const failure = new Error('database down');
    const handled = Promise.reject(failure);
    handled.catch(() => undefined);
    const calls: number[] = [];
    emitter.on('tick', async () => {
      await handled;
    });
    emitter.on('tick', (n) => calls.push(n));
    emitter.emit('tick', 1);
    expect(calls).toEqual([1]);
    expect(errors).toEqual([]);
    await vi.waitFor(() => expect(errors).toEqual([failure]));
  });

  it('leaves a thenable a listener returns alone: awaiting some (a query builder) runs them', () => {
    const { emitter, errors } = make();
    let started = 0;
    const lazy = { then: () => void started++ };
    emitter.on('tick', () => lazy as unknown as void);
    emitter.emit('tick', 1);
    expect(started).toBe(0);
    expect(errors).toEqual([]);
  });
});
