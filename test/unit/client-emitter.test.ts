import { afterEach, describe, expect, it, vi } from 'vitest';
import { Emitter } from '../../src/client/emitter.js';
import { useMockServer } from './client-harness.js';

interface Events {
  a: number;
  b: string;
}

/** Captures what listeners throw: the emitter rethrows it in a microtask. */
function captureRethrown(): unknown[] {
  const thrown: unknown[] = [];
  const queue = globalThis.queueMicrotask;
  vi.spyOn(globalThis, 'queueMicrotask').mockImplementation((task) =>
    queue(() => {
      try {
        task();
      } catch (error) {
        thrown.push(error);
      }
    }),
  );
  return thrown;
}

describe('Emitter', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('calls listeners of an event in the order they were added, with the payload', () => {
    const emitter = new Emitter<Events>();
    const calls: string[] = [];
    emitter.on('a', (n) => calls.push(`first ${n}`));
    emitter.on('a', (n) => calls.push(`second ${n}`));
    emitter.on('b', (s) => calls.push(`b ${s}`));
    emitter.emit('a', 1);
    expect(calls).toEqual(['first 1', 'second 1']);
  });

  it('returns from on() the function that removes the listener', () => {
    const emitter = new Emitter<Events>();
    const listener = vi.fn();
    const off = emitter.on('a', listener);
    off();
    off();
    emitter.emit('a', 1);
    expect(listener).not.toHaveBeenCalled();
  });

  it('removes a listener with off()', () => {
    const emitter = new Emitter<Events>();
    const kept = vi.fn();
    const removed = vi.fn();
    emitter.on('a', kept);
    emitter.on('a', removed);
    emitter.off('a', removed);
    emitter.emit('a', 1);
    expect(kept).toHaveBeenCalledOnce();
    expect(removed).not.toHaveBeenCalled();
  });

  it('calls, during an emit, exactly the listeners there were when it started', () => {
    const emitter = new Emitter<Events>();
    const calls: string[] = [];
    const second = (): void => {
      calls.push('second');
    };
    emitter.on('a', () => {
      calls.push('first');
      emitter.off('a', second);
      emitter.on('a', () => calls.push('added'));
    });
    emitter.on('a', second);
    emitter.emit('a', 1);
    expect(calls).toEqual(['first', 'second']);
    calls.length = 0;
    emitter.emit('a', 2);
    expect(calls).toEqual(['first', 'added']);
  });

  it('takes event names that are also names of Object.prototype members', () => {
    const emitter = new Emitter<Record<string, number>>();
    const listener = vi.fn();
    expect(() => emitter.emit('constructor', 1)).not.toThrow();
    emitter.on('toString', listener);
    emitter.emit('toString', 2);
    expect(listener).toHaveBeenCalledWith(2);
  });

  it('keeps calling the others when a listener throws, and rethrows the error in a microtask', async () => {
    const thrown = captureRethrown();
    const emitter = new Emitter<Events>();
    const after = vi.fn();
    const boom = new Error('boom');
    emitter.on('a', () => {
      throw boom;
    });
    emitter.on('a', after);
    expect(() => emitter.emit('a', 1)).not.toThrow();
    expect(after).toHaveBeenCalledWith(1);
    expect(thrown).toEqual([]);
    await Promise.resolve();
    expect(thrown).toEqual([boom]);
  });
});

describe('client listeners', () => {
  const server = useMockServer();
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('a throwing listener stops neither the other listeners nor the client', async () => {
    const thrown = captureRethrown();
    const client = server.client();
    const seen: unknown[] = [];
    client.on('message', () => {
      throw new Error('application bug');
    });
    client.on('message', ({ data }) => seen.push(data));
    client.on('open', () => {
      throw new Error('another bug');
    });
    const peer = await server.accept();
    peer.send({ t: 'msg', id: 'e1-1', d: 1 }, { t: 'msg', id: 'e1-2', d: 2 });
    await vi.advanceTimersByTimeAsync(5);
    expect(seen).toEqual([1, 2]);
    expect(client.state).toBe('open');
    expect(thrown.map((error) => (error as Error).message)).toEqual(['another bug', 'application bug', 'application bug']);
    client.close();
  });

  it('once() hears one event only', async () => {
    const client = server.client();
    const ids: string[] = [];
    client.once('message', ({ id }) => ids.push(id));
    const peer = await server.accept();
    peer.send({ t: 'msg', id: 'e1-1', d: 1 }, { t: 'msg', id: 'e1-2', d: 2 });
    expect(ids).toEqual(['e1-1']);
    client.close();
  });

  it('off() removes a client listener', async () => {
    const client = server.client();
    const listener = vi.fn();
    client.on('message', listener);
    client.off('message', listener);
    const peer = await server.accept();
    peer.send({ t: 'msg', id: 'e1-1', d: 1 });
    expect(listener).not.toHaveBeenCalled();
    client.close();
  });
});
